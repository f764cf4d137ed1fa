# What the examples' build.sh share to build a service's code archive from a Debian package. POSIX
# sh (they run under sh and bash alike), sourced first: `. "$(dirname "$0")/../lib/build-archive.sh"`.
# It sets -eu and `here`, the example's folder; the script sets `out`, its archive, then calls:
#   install_packages PACKAGE...  installs them with apt-get as root (otherwise says how, and exits 1)
#   skip_if_up_to_date INPUT...  exits 0 when `out` is newer than every input (a path from `here`),
#                                the script and this file; FORCE=1 rebuilds anyway
#   begin_stage                  sets `root`, an empty folder to fill, in a staging folder under
#                                `here`/build that goes on exit
#   pack_archive [entries]       packs `root`, readable by all, into `out`: a reproducible tar (sorted,
#                                numeric root owner), gzip -6 without a name or a time stamp; says how
#                                many files (and entries, with `entries`) and bytes, and how long it took
set -eu

here=$(cd "$(dirname "$0")" && pwd)
archive_lib=$(cd "$here/../lib" && pwd)/build-archive.sh

install_packages() {
	_what=
	for _pkg in "$@"; do _what="${_what:+$_what and }$_pkg"; done
	echo "installing Debian's $_what" >&2
	if [ "$(id -u)" != 0 ]; then
		echo "run as root, or: apt-get install --no-install-recommends $*" >&2
		exit 1
	fi
	apt-get install -y --no-install-recommends "$@" >&2
}

skip_if_up_to_date() {
	if [ "${FORCE:-0}" != 1 ] && [ -f "$out" ] &&
		[ -z "$(cd "$here" && find -L "$@" build.sh "$archive_lib" -newer "$out" -print -quit 2>/dev/null)" ]; then
		echo "up to date: $out"
		exit 0
	fi
}

begin_stage() {
	start=$(date +%s.%N)
	mkdir -p "$here/build"
	stage=$(mktemp -d "$here/build/.stage.XXXXXX")
	trap 'rm -rf "$stage"' EXIT INT TERM
	root=$stage/root
	mkdir -p "$root"
}

pack_archive() {
	chmod -R u=rwX,go=rX "$root"
	tar -C "$root" --sort=name --owner=0 --group=0 --numeric-owner -cf - . | gzip -6 -n >"$stage/out.tar.gz"
	mv "$stage/out.tar.gz" "$out"
	_files="$(find "$root" -type f | wc -l) files"
	if [ "${1:-}" = entries ]; then _files="$_files ($(find "$root" | wc -l) entries)"; fi
	_size=$(wc -c <"$out")
	echo "$start $(date +%s.%N)" | awk -v o="$out" -v f="$_files" -v s="$_size" \
		'{ printf "built %s: %s, %s bytes, %.1f s\n", o, f, s, $2 - $1 }'
}
