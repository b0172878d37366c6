#!/usr/bin/env bash
# Regenerates the seed corpora in fuzz/seeds/<target>/ from real inputs: command lines of
# Debian and of boards/*.toml, an excerpt of a Debian kernel's modules.dep (from the kernels
# `cargo xtask` caches in ~/.cache/autoinit, when present), archives made by GNU tar, sidecars
# made by sha256sum, partition tables made by sfdisk and superblocks made by mkfs.vfat,
# mkfs.ext2/3/4 and mksquashfs (first few KiB only); Debian's unit files from
# /lib/systemd/system, the host's /etc/default files, system accounts of /etc/passwd and
# /etc/group, and records of /dev/kmsg (when readable). Needs the packages of
# xtask/scripts/setup-host.sh and python3. Deterministic (fixed labels, UUIDs and times) except
# for the time mkfs.vfat stamps on the volume-label entry of the FAT root directories.
#
# Usage: fuzz/seeds/make-seeds.sh [TARGET...]   (default: every target)
set -euo pipefail

SEEDS="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$SEEDS/../.." && pwd)"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
export LC_ALL=C TZ=UTC SOURCE_DATE_EPOCH=1700000000 E2FSPROGS_FAKE_TIME=1700000000

fresh() { rm -rf "${SEEDS:?}/$1"; mkdir -p "$SEEDS/$1"; }
# The first $2 bytes of file $1 into seed $3.
head_of() { head -c "$2" "$1" >"$3"; }

cmdline() {
  fresh cmdline
  local d="$SEEDS/cmdline" i=0
  # Debian's GRUB and Raspberry Pi firmware lines, as /proc/cmdline shows them.
  printf 'BOOT_IMAGE=/boot/vmlinuz-6.1.0-18-amd64 root=UUID=0f3e6c2a-5d41-4b8e-9f2e-7a1c3b5d9e04 ro quiet\n' >"$d/debian-grub"
  printf 'coherent_pool=1M 8250.nr_uarts=1 snd_bcm2835.enable_headphones=0 bcm2708_fb.fbwidth=656 bcm2708_fb.fbheight=416 vc_mem.mem_base=0x3ec00000 vc_mem.mem_size=0x40000000  console=ttyS1,115200 console=tty0 root=PARTUUID=4e639091-02 rw fsck.repair=yes rootwait\n' >"$d/raspberry-pi"
  # Every board's command line, with the keys the boot tests add.
  for f in "$ROOT"/boards/*.toml; do
    line=$(awk -F'"' '/^cmdline *=/ {print $2; exit}' "$f")
    [ -n "$line" ] || continue
    printf '%s autoinit.wait=30 autoinit.log=debug\n' "$line" >"$d/board-$(basename "$f" .toml)"
  done
  # Every key with a valid value, quoting, and the bad keys docs/cmdline.md shows.
  printf '%s\n' 'console=ttyS0,115200 "autoinit.boot=LABEL=MY DISK" autoinit.bootfs=vfat autoinit.bootopts=ro,noatime,utf8 autoinit.dir=images/v2 autoinit.image=sys.img autoinit.modules=loop,squashfs,virtio_blk,vfat autoinit.wait=0 autoinit.safe=2 autoinit.data=PARTLABEL=data autoinit.datafs=ext4 autoinit.dataopts=rw,nodev autoinit.hostname=board-1.lan autoinit.init=/sbin/init autoinit.watchdog=/dev/watchdog0,15 autoinit.rescue=yes autoinit.debug=panic' >"$d/all-keys"
  printf '%s\n' 'autoinit.boot=/dev/mmcblk0p1 autoinit.data=UUID=1234-ABCD autoinit.bogus=1 autoinit.log=loud autoinit.wait=forever autoinit.dir=../x autoinit.modules=a,,b autoinit.image autoinit.hostname=-x x="1 2" autoinit.rescue=maybe' >"$d/bad-keys"
  printf 'console=ttyS0 autoinit.boot=PARTUUID=0f3e6c2a-5d41-4b8e-9f2e-7a1c3b5d9e04 autoinit.boot=PARTUUID=1234abcd-01 autoinit.data=/dev/disk/by-label/DATA\0initrd=\\initrd.img\n' >"$d/partuuid"
}

legacy_env() {
  fresh legacy_env
  local d="$SEEDS/legacy_env"
  # What the kernel hands /init: HOME, TERM, then every parameter without a dot.
  printf 'HOME=/\0TERM=linux\0BOOT_IMAGE=/boot/vmlinuz\0autoserver_boot_dev=LABEL=AUTOSVR\0autoserver_boot_fstype=vfat\0autoserver_boot_opts=ro\0autoserver_dir=autosvr\0autoserver_safe_mode=1\0autoserver_init=/sbin/init' >"$d/autoserver"
  printf 'HOME=/\0TERM=linux\0autoserver_boot_dev=LABEL=OLD DISK\0autoserver_dir=a"b\0autoserver_safe_mode=7\0noequals\0' >"$d/odd-values"
}

modules_dep() {
  fresh modules_dep
  local d="$SEEDS/modules_dep" found=0
  for dep in "$HOME"/.cache/autoinit/kernels/*/*/lib/modules/*/modules.dep "$HOME"/.cache/autoinit/kernels/*/*/usr/lib/modules/*/modules.dep; do
    [ -f "$dep" ] || continue
    found=1
    local arch; arch=$(echo "$dep" | sed -E 's#.*/kernels/([^/]+)/.*#\1#')
    # The boot stage's modules and everything they need, as lines of the real file.
    python3 - "$dep" >"$d/debian-$arch" <<'PY'
import sys, re
lines = open(sys.argv[1]).read().splitlines()
by_name = {}
for l in lines:
    path = l.split(':', 1)[0]
    name = re.sub(r'\.ko(\.(xz|zst|gz))?$', '', path.rsplit('/', 1)[-1]).replace('-', '_')
    by_name.setdefault(name, l)
# The boot stage's usual list, and a few with deep dependency chains.
wanted = ['virtio_blk', 'vfat', 'squashfs', 'loop', 'ext4', 'nls_cp437', 'hid_generic', 'btrfs', 'nfsv4', 'snd_hda_intel']
todo = [by_name[w] for w in wanted if w in by_name]
keep, seen = [], set()
while todo:
    l = todo.pop()
    if l in seen:
        continue
    seen.add(l)
    keep.append(l)
    for dep in l.split(':', 1)[1].split():
        todo.extend(x for x in lines if x.startswith(dep + ':'))
print(' '.join(w for w in wanted if w in by_name))
for l in lines:
    if l in seen:
        print(l)
PY
  done
  # Without a cached kernel: a hand-written excerpt in depmod's form.
  printf 'vfat ext4 virtio-blk\nkernel/fs/fat/fat.ko.xz:\nkernel/fs/fat/vfat.ko.xz: kernel/fs/fat/fat.ko.xz\nkernel/lib/crc16.ko.xz:\nkernel/fs/mbcache.ko.xz:\nkernel/fs/jbd2/jbd2.ko.xz:\nkernel/fs/ext4/ext4.ko.xz: kernel/lib/crc16.ko.xz kernel/fs/mbcache.ko.xz kernel/fs/jbd2/jbd2.ko.xz\nkernel/drivers/virtio/virtio_ring.ko.xz:\nkernel/drivers/virtio/virtio.ko.xz: kernel/drivers/virtio/virtio_ring.ko.xz\nkernel/drivers/block/virtio_blk.ko.xz: kernel/drivers/virtio/virtio_ring.ko.xz kernel/drivers/virtio/virtio.ko.xz\n' >"$d/sample"
  [ "$found" = 1 ] || echo "make-seeds: no kernel in ~/.cache/autoinit (cargo xtask initramfs fetches one): modules_dep has the sample only" >&2
}

tar_seeds() {
  fresh tar
  local d="$SEEDS/tar" src="$TMP/tree"
  local long="a/a-directory-name-long-enough-that-with-the-file-name-the-path-goes-past-the-hundred-bytes-of-the-ustar-name-field"
  mkdir -p "$src/etc/ssh" "$src/usr/local/bin" "$src/$long"
  printf 'board-1\n' >"$src/etc/hostname"
  printf 'PermitRootLogin no\n' >"$src/etc/ssh/sshd_config"
  printf '#!/bin/sh\necho hi\n' >"$src/usr/local/bin/hello"
  chmod 0755 "$src/usr/local/bin/hello"
  chmod 4755 "$src/usr/local/bin"
  printf 'x\n' >"$src/$long/and-a-file-name-of-some-length"
  ln -s ../usr/local/bin/hello "$src/etc/hello"
  ln -s /etc/hostname "$src/etc/abs-link"
  ln "$src/etc/hostname" "$src/etc/hostname.hard"
  touch -d @1700000000 -h $(find "$src")
  local common=(--sort=name --owner=0 --group=0 --numeric-owner --mtime=@1700000000 -b 1 -C "$src")
  tar "${common[@]}" --format=ustar -cf "$d/ustar.tar" etc usr
  tar "${common[@]}" --format=gnu -cf "$d/gnu-longname.tar" a etc/hostname
  tar "${common[@]}" --format=pax --pax-option=delete=atime,delete=ctime -cf "$d/pax.tar" .
  # A global pax header (tar writes one for --pax-option with globexthdr) and uid/gid in pax.
  tar --sort=name --owner=1000 --group=1000 --numeric-owner --mtime=@1700000000 -b 1 -C "$src" --format=pax \
      --pax-option=delete=atime,delete=ctime,globexthdr.name=%n/global,mtime:=1700000001 -cf "$d/pax-global.tar" etc/ssh
}

sha256_seeds() {
  fresh sha256
  local d="$SEEDS/sha256" f="$TMP/10-site.tar"
  printf 'overlay\n' >"$f"
  (cd "$TMP" && sha256sum 10-site.tar) >"$d/text-mode"
  (cd "$TMP" && sha256sum -b 10-site.tar) >"$d/binary-mode"
  sha256sum "$f" | awk '{print $1}' >"$d/hash-only"
  (cd "$TMP" && sha256sum 10-site.tar | tr a-f A-F | sed 's/$/\r/') >"$d/upper-crlf"
  (cd "$TMP" && sha256sum 10-site.tar | sed 's/10-site/20-other/') >"$d/wrong-name"
  printf 'abc' >"$d/abc"
  head -c 200 "$ROOT/README.md" >"$d/text-200"
}

partition() {
  fresh partition
  local d="$SEEDS/partition" img="$TMP/disk.img"
  rm -f "$img"; truncate -s 16M "$img"
  printf 'label: dos\nlabel-id: 0x1234abcd\n1: start=2048, size=8192, type=c, bootable\n3: start=12288, type=83\n' | sfdisk -q "$img"
  head_of "$img" 512 "$d/mbr"
  rm -f "$img"; truncate -s 16M "$img"
  local gpt='label: gpt
label-id: 0F3E6C2A-5D41-4B8E-9F2E-7A1C3B5D9E04
1: size=4MiB, type=uefi, name="AUTOSVR boot", uuid=6B8A1D52-7C3E-4F90-A1B2-C3D4E5F60718
2: size=4MiB, type=linux, name="data", uuid=11223344-5566-7788-99AA-BBCCDDEEFF00
3: type=linux, name="Ünïcödé ☃", uuid=A1B2C3D4-E5F6-0718-293A-4B5C6D7E8F90
'
  printf '%s' "$gpt" | sfdisk -q "$img"
  head_of "$img" $((34 * 512)) "$d/gpt"
  rm -f "$img"; truncate -s 16M "$img"
  printf 'label: gpt\nlabel-id: 5C1D7E2A-0B3F-4A6D-8E9C-1F2A3B4C5D6E\ntable-length: 4\nfirst-lba: 34\n1: size=1MiB, name="x", uuid=0A1B2C3D-4E5F-6071-8293-A4B5C6D7E8F9\n2: name="second", uuid=F9E8D7C6-B5A4-9382-7160-5F4E3D2C1B0A\n' | sfdisk -q "$img"
  head_of "$img" $((3 * 512)) "$d/gpt-4-entries"
  # The same small table for 4096-byte logical sectors: header at 4096, entries at 8192.
  python3 - "$d/gpt-4-entries" "$d/gpt-4k-sectors" <<'PY'
import sys, struct, zlib
d = open(sys.argv[1], 'rb').read()
out = bytearray(3 * 4096)
out[:512] = d[:512]
h = bytearray(d[512:1024])
size = struct.unpack_from('<I', h, 12)[0]
entries = d[1024:1024 + 4 * 128]
struct.pack_into('<Q', h, 32, 16 * 1024 * 1024 // 4096 - 1)   # backup LBA
struct.pack_into('<Q', h, 40, 6)                                # first usable
struct.pack_into('<Q', h, 48, 16 * 1024 * 1024 // 4096 - 6)    # last usable
struct.pack_into('<Q', h, 72, 2)                                # entries LBA
ents = bytearray(entries)
for i in range(4):   # partition LBAs in 4 KiB units
    first, last = struct.unpack_from('<QQ', ents, i * 128 + 32)
    if first:
        struct.pack_into('<QQ', ents, i * 128 + 32, 6 + i * 64, 6 + i * 64 + 63)
struct.pack_into('<I', h, 88, zlib.crc32(bytes(ents)))
struct.pack_into('<I', h, 16, 0)
struct.pack_into('<I', h, 16, zlib.crc32(bytes(h[:size])))
out[4096:4096 + 512] = h
out[8192:8192 + len(ents)] = ents
open(sys.argv[2], 'wb').write(out)
PY
}

superblock() {
  fresh superblock
  local d="$SEEDS/superblock" img="$TMP/fs.img"
  rm -f "$img"; mkfs.vfat -C -n BOOT -i 1234ABCD "$img" 1440 >/dev/null
  head_of "$img" 10240 "$d/fat12"  # boot sector, FATs, start of the root directory
  rm -f "$img"; mkfs.vfat -C -F 16 -n "MY DISK" -i 00C0FFEE -R 1 -f 1 -r 16 "$img" 8192 >/dev/null
  head_of "$img" 9216 "$d/fat16"   # to the end of its root directory
  rm -f "$img"; mkfs.vfat -C -F 32 -n AUTOSVR -i DEADBEEF "$img" 65536 >/dev/null
  head_of "$img" 2048 "$d/fat32"
  for t in ext2 ext3 ext4; do
    rm -f "$img"
    mkfs."$t" -q -F -L "root-$t" -U 0f3e6c2a-5d41-4b8e-9f2e-7a1c3b5d9e04 -E hash_seed=0f3e6c2a-5d41-4b8e-9f2e-7a1c3b5d9e04 "$img" 2M >/dev/null
    head_of "$img" 2048 "$d/$t"
  done
  rm -rf "$TMP/sq" && mkdir -p "$TMP/sq/etc" && printf 'x\n' >"$TMP/sq/etc/hostname"
  rm -f "$img"; env -u SOURCE_DATE_EPOCH mksquashfs "$TMP/sq" "$img" -quiet -noappend -all-root -mkfs-time 1700000000 -all-time 1700000000 >/dev/null
  head_of "$img" 4096 "$d/squashfs"
}

mounts() {
  fresh mounts
  local d="$SEEDS/mounts"
  # /proc/mounts of a booted autoinit system (as the boot tests show it), with escapes.
  cat >"$d/booted" <<'EOF'
rootfs / rootfs rw,size=498568k,nr_inodes=124642 0 0
tmpfs / tmpfs rw,relatime,mode=755 0 0
devtmpfs /dev devtmpfs rw,nosuid,relatime,size=498572k,nr_inodes=124643,mode=755 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
/dev/vda1 /boot_disk vfat ro,relatime,fmask=0022,dmask=0022,codepage=437,iocharset=ascii,shortname=mixed,errors=remount-ro 0 0
/dev/loop0 /rofs_root squashfs ro,nosuid,nodev,relatime,errors=continue 0 0
/dev/vdb1 /data ext4 rw,relatime 0 0
tmpfs /run tmpfs rw,nosuid,nodev,mode=755 0 0
/dev/sda1 /mnt/my\040disk\011tab\012nl\134bs vfat ro 0 0
EOF
  printf 'none /a\\777 tmpfs rw 0 0\nnone /b\\000 tmpfs rw 0 0\nbroken\n\n' >"$d/bad-escapes"
}

mountopts() {
  fresh mountopts
  local d="$SEEDS/mountopts"
  printf 'ro' >"$d/ro"
  printf 'defaults' >"$d/defaults"
  printf 'rw,nosuid,nodev,noexec,relatime,fmask=0022,dmask=0022,codepage=437,iocharset=ascii,shortname=mixed,errors=remount-ro' >"$d/vfat"
  printf 'ro,noatime,sync,lazytime,data=ordered,commit=30' >"$d/ext4"
  printf 'rw,ro,suid,nosuid,dev,nodev,exec,noexec,async,sync,atime,noatime,uid=1000,gid=1000' >"$d/every-flag"
}

# Debian's unit files for common services, as shipped in /lib/systemd/system: those that
# exist on this host (the list mixes simple daemons, oneshots, templates, gettys and heavily
# sandboxed services); a few written for autoinit's own keys.
UNITS="dpkg-db-backup polkit e2scrub_fail@ apt-daily getty-static dbus fstrim postgresql modprobe@ systemd-sysctl man-db rc-local procps console-getty serial-getty@ systemd-timesyncd user-runtime-dir@ e2scrub@"
unit() {
  fresh unit
  local d="$SEEDS/unit" n=0
  for u in $UNITS; do
    f="/lib/systemd/system/$u.service"
    [ -f "$f" ] || continue
    cp "$f" "$d/debian-$u.service"
    n=$((n + 1))
  done
  [ "$n" -gt 0 ] || echo "make-seeds: no /lib/systemd/system here: unit has the hand-written seeds only" >&2
  cat >"$d/autoinit-web.service" <<'EOF'
[Unit]
Description=Web server for %n
After=network.service data.mount
Requires=network.service
ConditionPathExists=|/etc/web.conf
ConditionPathExists=!/run/web.disabled

[Service]
Type=notify
ExecStartPre=-/usr/bin/web --check \
    --config /etc/web.conf
ExecStart=/usr/bin/web --listen ${PORT} $OPTS "quoted arg" 'single'
ExecStop=:/bin/kill -TERM $MAINPID
Environment=PORT=8080 "OPTS=-v -v" HOME=%h
EnvironmentFile=-/etc/default/web
User=www-data
Group=www-data
SupplementaryGroups=adm ssl-cert
WorkingDirectory=~
Restart=on-failure
RestartSec=2s 500ms
TimeoutStopSec=infinity
StandardOutput=kmsg
StandardError=file:/var/log/web.err
LimitNOFILE=1024:4096
Nice=-5
UMask=0027
NoNewPrivileges=yes
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
AmbientCapabilities=CAP_NET_BIND_SERVICE
MemoryMax=64M
TasksMax=50%
CPUWeight=200
X-Custom=ignored

[Install]
WantedBy=multi-user.target
EOF
  cat >"$d/autoinit-container.service" <<'EOF'
[Unit]
Description=A container

[Service]
ExecStart=@/sbin/init container-init
RootImage=/data/images/app.squashfs
PrivatePIDs=init
PrivateNetwork=yes
PrivateUsers=100000:65536
PrivateIPC=yes
Hostname=app-1
BindPaths=/data/app:/var/lib/app -/dev/dri:/dev/dri:norbind
BindReadOnlyPaths=/etc/resolv.conf
TemporaryFileSystem=/tmp:mode=1777,size=10% /run:ro
EOF
}

exec_line() {
  fresh exec_line
  local d="$SEEDS/exec_line" i=0
  # The ExecStart= lines of the unit seeds after their prefixes, with the environment a
  # service gets (flags byte 0: $VAR expanded), and a few with `@` or `:` (flags 1, 2).
  grep -h '^Exec[A-Za-z]*=' "$SEEDS"/unit/* | sed -E 's/^[A-Za-z]+=[-@:+!]*//' | sort -u | head -12 | while IFS= read -r line; do
    i=$((i + 1))
    printf '\0%s\001TERM=vt220\nPORT=8080\nOPTS=-v -v\nMAINPID=42\n' "$line" >"$d/exec-$i"
  done
  printf '\001/sbin/agetty agetty -o %s --noclear - $TERM\001TERM=linux' "'-p -- \\\\u'" >"$d/argv0"
  printf '\002/bin/kill -TERM $MAINPID $$ ${X}' >"$d/no-expansion"
  printf '\0/bin/echo \\x41\\101\\u00e9\\U0001F600 \\t\\n%%%% %%n %%i %%I "a b"c'"'"'d e'"'"' \\; ;' >"$d/escapes"
}

env_seeds() {
  fresh env
  local d="$SEEDS/env"
  # Debian's /etc/default files are EnvironmentFile= files.
  for f in /etc/default/*; do
    [ -f "$f" ] && [ "$(wc -c <"$f")" -lt 8192 ] && cp "$f" "$d/default-$(basename "$f")"
  done
  grep -h '^Environment=' "$SEEDS"/unit/* | sed 's/^Environment=//' >"$d/environment-lines"
  printf '%s\n' '# quoting as systemd reads it' 'export A=1' 'B="two words" ' "C='single \\n kept'" 'D=un\' 'continued' 'E="x\"y\\z\`\$"' 'F=  spaced  ' ';comment' 'G="multi' 'line"' 'H=%n$HOME' >"$d/quoting"
  printf '%s\n' 'A=1' 'B=2' '-A' 'C=3' 'B=again' 'D=4' 'E=5' 'F=6' 'lower_case=ok' '9BAD=x' 'NOEQUALS' >"$d/table-ops"
}

passwd() {
  fresh passwd
  local d="$SEEDS/passwd"
  # The host's system accounts (uid < 1000 and nobody), a login user as on a Raspberry Pi
  # image, and the group file with the memberships such an image has.
  {
    awk -F: '$3 < 1000 || $3 == 65534' /etc/passwd
    printf 'pi:x:1000:1000:,,,:/home/pi:/bin/bash\n'
    printf '\001'
    awk -F: '$3 < 1000 || $3 == 65534' /etc/group | sed -E 's/^(adm|sudo|video|audio|plugdev|dialout):x:([0-9]+):$/\1:x:\2:pi/'
    printf 'pi:x:1000:\n\001pi\nwww-data\n33\npostgres\nnobody\n0\n'
  } >"$d/debian"
  printf 'root:x:0:0:root:/root:/bin/ash\r\n# comment\n+nis::::::\nbroken:x:12:oops:gecos:/home/broken:/bin/sh\nshort:x:13:13\ndup:x:40:40::/first:/bin/sh\ndup:x:41:41::/second:/bin/sh\nbig:x:4294967295:1::/:\n\001root:x:0:\nbad:x:z:dup\nwheel:x:10:dup,root\nwheel:x:11:dup\n\001dup\nbroken\n12\n65535\n4294967296\n' >"$d/malformed"
}

control_proto() {
  fresh control_proto
  local d="$SEEDS/control_proto"
  # What `autoinit status|start|...` sends, one request per connection.
  printf 'status\n' >"$d/status"
  printf 'status sshd.service\n' >"$d/status-one"
  printf 'restart web@site-1\n' >"$d/restart"
  printf 'upgrade /data/autosvr/system-2.img --persist --settle 30\n' >"$d/upgrade"
  printf 'upgrade\t/tmp/x.img  --settle 5\r\n' >"$d/upgrade-tabs"
  printf 'exec web -- /bin/sh -c "ls -l /"\n' >"$d/exec"
  printf 'rollback\n' >"$d/rollback"
  printf 'poweroff\nreboot\n' >"$d/trailing"
}

notify_msg() {
  fresh notify_msg
  local d="$SEEDS/notify_msg"
  # What sd_notify(3) callers send (systemd-notify, libsystemd's daemons).
  printf 'READY=1\nSTATUS=Processing requests...\nMAINPID=4242\n' >"$d/ready"
  printf 'WATCHDOG=1' >"$d/watchdog"
  printf 'RELOADING=1\nMONOTONIC_USEC=123456789\n' >"$d/reloading"
  printf 'STOPPING=1\nSTATUS=Shutting down\nERRNO=5\nEXIT_STATUS=3\n' >"$d/stopping"
  printf 'FDSTORE=1\nFDNAME=listen\nEXTEND_TIMEOUT_USEC=5000000\nX_CUSTOM=1\nnot a pair\n' >"$d/unsupported"
}

outlog() {
  fresh outlog
  local d="$SEEDS/outlog"
  # A service's output as its pipe delivers it, and records as read(2) returns them from
  # /dev/kmsg (the kernel's own lines and autoinit's), with a continuation dictionary.
  printf 'Server listening on 0.0.0.0 port 22.\r\n\tindented\x1b[0m\n\n%0300d\nlast line without newline' 0 >"$d/service-output"
  printf '6,412,1843211,-;sshd[211]: Server listening on :: port 22.\n' >"$d/service-record"
  printf '30,413,1843290,-;autoinit: service web started (pid 212)\n' >"$d/autoinit-record"
  printf '4,414,1900000,-;web[212]: caf\\xc3\\xa9 \\x5c done\\x0a\n' >"$d/escaped-record"
  printf '6,89,51201,-;pci 0000:00:01.0: [8086:7000] type 00 class 0x060100\n SUBSYSTEM=pci\n DEVICE=+pci:0000:00:01.0\n' >"$d/dict-record"
  printf '5,78,61257,-;random: crng init done\n' >"$d/kernel-record"
  # Real records of this host's kernel, when /dev/kmsg is readable: a few common lines and
  # the first with a dictionary.
  python3 - "$d" <<'PY' || true
import os, re, sys
fd = os.open('/dev/kmsg', os.O_RDONLY | os.O_NONBLOCK)
common = re.compile(rb';(random: crng init done|Freeing unused kernel|clocksource: Switched|Run /)')
kept, dict_kept = 0, False
while kept < 4:
    try:
        rec = os.read(fd, 8192)
    except OSError:
        break
    has_dict = b'\n ' in rec
    if common.search(rec) or (has_dict and not dict_kept):
        dict_kept |= has_dict
        kept += 1
        open(f'{sys.argv[1]}/kmsg-{kept}', 'wb').write(rec)
PY
}

persist() {
  fresh persist
  local d="$SEEDS/persist"
  # Trial markers and boot records as persist.rs writes them, and as a power cut leaves them.
  printf '3\n' >"$d/marker"
  printf '0\n' >"$d/marker-used"
  printf '' >"$d/marker-empty"
  printf '1' >"$d/marker-cut"
  printf 'trial 2\n' >"$d/record-trial"
  printf 'image\n' >"$d/record-image"
  printf 'old\n' >"$d/record-old"
  printf 'tri' >"$d/record-cut"
}

container_spec() {
  fresh container_spec
  local d="$SEEDS/container_spec"
  # BindPaths=, TemporaryFileSystem=, PrivateUsers= and Hostname= values, as systemd.exec(5)
  # and systemd-nspawn examples write them.
  printf '/data/app:/var/lib/app -/dev/dri:/dev/dri:norbind /etc/resolv.conf\001/tmp:mode=1777,size=10%% /run:ro /var/cache:nr_inodes=1k\001100000:65536\001app-1.lan' >"$d/typical"
  printf '/srv/../etc:/x\001/tmp/./y\0010:65536\001-bad' >"$d/escaping"
  printf '/a::rbind /b:/c:\001/t:rw,ro,mode=0700\001yes\001a.b-c' >"$d/edge"
}

all="cmdline legacy_env modules_dep tar sha256 partition superblock mounts mountopts unit exec_line env passwd control_proto notify_msg outlog persist container_spec"
for t in ${*:-$all}; do
  case "$t" in
    tar) tar_seeds ;;
    sha256) sha256_seeds ;;
    env) env_seeds ;;
    cmdline | legacy_env | modules_dep | partition | superblock | mounts | mountopts | unit | exec_line | passwd | \
      control_proto | notify_msg | outlog | persist | container_spec) "$t" ;;
    *) echo "make-seeds: unknown target $t (known: $all)" >&2; exit 2 ;;
  esac
done
du -sb "$SEEDS"/*/ | sed "s#$SEEDS/##"
