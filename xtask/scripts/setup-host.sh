#!/usr/bin/env bash
# Installs what building and testing autoinit needs on a Debian 12 host. Idempotent: a second
# run finds everything in place and only checks. Called by `cargo xtask setup` (and so by
# `cargo xtask test` and `cargo xtask demo`); safe to run by hand.
set -euo pipefail

log() { printf 'setup: %s\n' "$*"; }
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# Rust targets: one per supported architecture (docs/architecture.md says why these flavours).
TARGETS="x86_64-unknown-linux-musl aarch64-unknown-linux-musl armv7-unknown-linux-gnueabihf riscv64gc-unknown-linux-gnu i686-unknown-linux-musl"
installed=$(rustup target list --installed)
for t in $TARGETS; do
  if ! grep -qx "$t" <<<"$installed"; then
    log "rustup target add $t"
    rustup target add "$t"
  fi
done

# Debian packages. qemu-system from bookworm conflicts with the qemu-utils 10 from
# bookworm-backports that this kind of machine ships, so QEMU comes from backports.
# squashfs-tools, dosfstools, mtools, e2fsprogs, fdisk (sfdisk), util-linux (blkid), tar and
# coreutils (sha256sum) build and check the boot-stage test disks (xtask/src/images.rs) and what
# `cargo xtask image` writes (disk.rs, board_image.rs: also gzip and cpio, which reads it back).
# qemu-system-x86 has qemu-system-x86_64 and qemu-system-i386; qemu-system-riscv (a package of
# its own since QEMU 8, pulled in by qemu-system-misc; named so the dependency is explicit) has
# qemu-system-riscv64 and the OpenSBI firmware its virt machine boots with (-bios default).
# g++ compiles libFuzzer for the fuzz targets (the libfuzzer-sys crate; `cargo xtask fuzz`
# installs the nightly toolchain and cargo-fuzz itself).
# debootstrap builds the Debian root with systemd of the container tests (container_tests.rs).
PKGS="debootstrap g++ qemu-system-x86 qemu-system-arm qemu-system-misc qemu-system-riscv qemu-user-static cpio kmod squashfs-tools dosfstools mtools e2fsprogs fdisk util-linux tar coreutils gzip xz-utils zstd busybox-static"
missing=""
# (No `cmd | grep -q` under pipefail: grep exiting early makes cmd die of SIGPIPE, and the
# check then fails at random.)
for p in $PKGS; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing="$missing $p"
done
foreign_missing=""
foreign=$(dpkg --print-foreign-architectures)
for a in arm64 armhf i386 riscv64; do
  grep -qx "$a" <<<"$foreign" || foreign_missing="$foreign_missing $a"
done
if [ -n "$missing" ] || [ -n "$foreign_missing" ] || [ ! -e /etc/apt/sources.list.d/autoinit.sources ]; then
  for a in $foreign_missing; do log "dpkg --add-architecture $a"; $SUDO dpkg --add-architecture "$a"; done
  # Reuse the mirror the machine is configured with.
  uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
  [ -n "$uri" ] || uri="http://deb.debian.org/debian"
  log "apt sources: bookworm-backports, trixie (riscv64 only) from $uri"
  $SUDO tee /etc/apt/sources.list.d/autoinit.sources >/dev/null <<SRC
Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $uri
Suites: trixie
Components: main
Architectures: riscv64
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
  # Keep trixie from replacing anything on the host: only riscv64 packages come from there.
  $SUDO tee /etc/apt/preferences.d/autoinit >/dev/null <<PREF
Package: *
Pin: release n=trixie
Pin-Priority: 100
PREF
  # A mirror in mid-sync can fail one index (seen for foreign arches of bookworm-security,
  # which nothing here needs): retry once, then go on and let apt-get install judge.
  log "apt-get update"
  $SUDO apt-get update -qq || { sleep 5; $SUDO apt-get update -qq; } || log "apt-get update reported errors; continuing"
  if [ -n "$missing" ]; then
    log "apt-get install$missing"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports $missing
  fi
fi
log "host ready"
