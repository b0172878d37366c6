#!/usr/bin/env bash
# Regenerates the seed corpora in fuzz/seeds/<target>/ from real inputs: command lines of
# Debian and of boards/*.toml, an excerpt of a Debian kernel's modules.dep (from the kernels
# `cargo xtask` caches in ~/.cache/autoinit, when present), archives made by GNU tar, sidecars
# made by sha256sum, partition tables made by sfdisk and superblocks made by mkfs.vfat,
# mkfs.ext2/3/4 and mksquashfs (first few KiB only). Needs the packages of
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

all="cmdline legacy_env modules_dep tar sha256 partition superblock mounts mountopts"
for t in ${*:-$all}; do
  case "$t" in
    tar) tar_seeds ;;
    sha256) sha256_seeds ;;
    cmdline | legacy_env | modules_dep | partition | superblock | mounts | mountopts) "$t" ;;
    *) echo "make-seeds: unknown target $t (known: $all)" >&2; exit 2 ;;
  esac
done
du -sb "$SEEDS"/*/ | sed "s#$SEEDS/##"
