#!/bin/sh
# Learners' size-limited work folders on this host (resources.disk): one fixed-size ext4 image per
# slot, attached to a loop device and linked as DEVICES/<slot>, the path Docker's `local` volume
# driver mounts (device=<link>). Loop numbers change at reboot; the link follows the image, and
# DEVICES lives under /dev, which a reboot empties, so a volume never mounts a stale loop number.
#
# One implementation for every host: `dlworkshop up` runs it, the deploy installs it with a unit
# that runs `attach` at boot. Images are named <slot>.img; the slots to prepare are given by name.
# It prints one line per image it created or attached, and nothing when all was in place.
#
#   work_volumes.sh prepare IMAGES DEVICES SIZE UID SLOT...  create the missing images (their root
#                                                           owned by UID), attach, link
#   work_volumes.sh attach  IMAGES DEVICES               attach and link every image (at boot)
#   work_volumes.sh detach  IMAGES DEVICES               unlink and detach every image
#   work_volumes.sh purge   IMAGES DEVICES               detach, then delete the images
set -eu

fail() { echo "work_volumes.sh: $*" >&2; exit 1; }

# Writes the loop device holding $1, attaching it to a free one when none does.
loop_of() {
    attached=$(losetup --list --noheadings --output NAME --associated "$1" | head -n 1)
    if [ -n "$attached" ]; then
        echo "$attached"
        return
    fi
    tries=0
    while [ "$tries" -lt 5 ]; do
        free=$(losetup --find)
        # In a container /dev is a copy: a loop device the kernel made later has no node there.
        [ -e "$free" ] || mknod "$free" b 7 "${free#/dev/loop}" 2>/dev/null || true
        if losetup "$free" "$1" 2>/dev/null; then
            echo "$free"
            return
        fi
        tries=$((tries + 1))  # another process took that device first
    done
    fail "no free loop device for $1"
}

attach() {
    images=$1 devices=$2
    mkdir -p "$devices"
    for image in "$images"/*.img; do
        [ -e "$image" ] || continue
        slot=$(basename "$image" .img)
        loop=$(loop_of "$image")
        if [ "$(readlink "$devices/$slot" || true)" != "$loop" ]; then
            ln -sfn "$loop" "$devices/$slot"
            echo "attached $slot at $loop"
        fi
    done
}

# Whether the loop device $1 is mounted (a learner's container uses it).
in_use() {
    grep -q " $(cat "/sys/block/${1#/dev/}/dev") " /proc/self/mountinfo
}

detach() {
    images=$1 devices=$2
    for image in "$images"/*.img; do
        [ -e "$image" ] || continue
        slot=$(basename "$image" .img)
        loop=$(losetup --list --noheadings --output NAME --associated "$image" | head -n 1)
        if [ -n "$loop" ] && in_use "$loop"; then
            # Detaching it now would free its number when the container stops, while the link
            # still names it: a later image could take the number. It stays, link and all.
            echo "kept $slot: in use" >&2
            continue
        fi
        rm -f "$devices/$slot"
        [ -z "$loop" ] || losetup --detach "$loop"
    done
    rmdir "$devices" 2>/dev/null || true
}

prepare() {
    images=$1 devices=$2 size=$3 owner=$4
    shift 4
    mkdir -p "$images"
    chmod 0700 "$images"
    for slot in "$@"; do
        image="$images/$slot.img"
        [ -e "$image" ] && continue
        truncate --size "$size" "$image.part"
        # The learner owns the root; no blocks reserved for root (the learner gets the whole size);
        # inode tables and journal left for the kernel to initialise (a sparse file reads as zeros).
        mkfs.ext4 -q -F -m 0 -L "$slot" \
            -E "root_owner=$owner:$owner,lazy_itable_init=1,lazy_journal_init=1" "$image.part"
        # A learner's file browser should not show an unreadable lost+found.
        debugfs -w -R "rmdir lost+found" "$image.part" >/dev/null 2>&1
        mv "$image.part" "$image"
        echo "created $slot ($size bytes)"
    done
    attach "$images" "$devices"
}

[ $# -ge 3 ] || fail "usage: work_volumes.sh prepare|attach|detach|purge IMAGES DEVICES [SIZE SLOT...]"
command=$1
shift
case "$command" in
    prepare) [ $# -ge 4 ] || fail "prepare needs IMAGES DEVICES SIZE UID SLOT..."; prepare "$@" ;;
    attach) attach "$1" "$2" ;;
    detach) detach "$1" "$2" ;;
    purge) detach "$1" "$2"; rm -rf "$1" ;;
    *) fail "unknown command $command" ;;
esac
