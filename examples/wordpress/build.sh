#!/bin/sh
# Builds build/wordpress.tar.gz, the document root of the `web` service, from Debian's wordpress
# package: the code of /usr/share/wordpress (its symlinks followed), one theme
# (twentytwentythree), no plugin, our wp-config.php, which reads everything from the environment,
# and our must-use plugin mu-plugins/cps.php (no update checks). Installs the packages when
# missing (apt-get, as root). Does nothing when the archive is newer than all its inputs; FORCE=1
# rebuilds anyway.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
src=/usr/share/wordpress
theme=twentytwentythree
out=$here/build/wordpress.tar.gz

if [ ! -f "$src/wp-settings.php" ] || [ ! -d "$src/wp-content/themes/$theme" ]; then
	echo "installing Debian's wordpress and wordpress-theme-$theme" >&2
	if [ "$(id -u)" != 0 ]; then
		echo "run as root, or: apt-get install --no-install-recommends wordpress wordpress-theme-$theme" >&2
		exit 1
	fi
	apt-get install -y --no-install-recommends wordpress "wordpress-theme-$theme" >&2
fi

# Up to date when no input is newer than the archive.
if [ "${FORCE:-0}" != 1 ] && [ -f "$out" ] &&
	[ -z "$(find -L "$src" "$here/wp-config.php" "$here/mu-plugins" "$here/build.sh" -newer "$out" -print -quit 2>/dev/null)" ]; then
	echo "up to date: $out"
	exit 0
fi

start=$(date +%s.%N)
mkdir -p "$here/build"
stage=$(mktemp -d "$here/build/.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT INT TERM
root=$stage/root
mkdir -p "$root/wp-content/themes" "$root/wp-content/plugins" "$root/wp-content/mu-plugins"

# The code. Debian ships 23 symlinks (into /usr/share/javascript, /usr/share/php/getid3,
# /etc/ssl/certs), most of them relative: copy their targets (cp -L). Left out: Debian's
# wp-config.php (it looks for /etc/wordpress/config-<host>.php) and the sample, .htaccess (a link
# to /etc/wordpress, and nginx does not read it) and wp-content, made below.
for entry in "$src"/* "$src"/.[!.]*; do
	[ -e "$entry" ] || continue
	case ${entry##*/} in
	wp-config.php | wp-config-sample.php | .htaccess | wp-content) ;;
	*) cp -rL --preserve=mode,timestamps "$entry" "$root/" ;;
	esac
done
cp -L --preserve=mode,timestamps "$src/wp-content/plugins/index.php" "$root/wp-content/index.php"
cp -L --preserve=mode,timestamps "$src/wp-content/plugins/index.php" "$root/wp-content/plugins/index.php"
cp -L --preserve=mode,timestamps "$src/wp-content/plugins/index.php" "$root/wp-content/themes/index.php"
cp -rL --preserve=mode,timestamps "$src/wp-content/themes/$theme" "$root/wp-content/themes/"

# With SCRIPT_DEBUG off (wp-config.php) WordPress registers the block editor's packages as
# wp-includes/js/dist/x.min.js and css/dist/.../x.min.css: drop their unminified twins (13.5 of the
# 60 MB; the archive is 11 MB instead of 14). Only there: elsewhere some scripts and styles are registered or read unminified, and so is
# default-editor-styles.css here. examples/check-by-hand.sh asks WordPress whether every script
# and style it registers still has its file.
find "$root/wp-includes/js/dist" "$root/wp-includes/css/dist" -type f \( -name '*.js' -o -name '*.css' \) \
	! -name '*.min.js' ! -name '*.min.css' ! -name default-editor-styles.css |
	while IFS= read -r f; do
		if [ -f "${f%.*}.min.${f##*.}" ]; then rm -f "$f"; fi
	done

cp "$here/wp-config.php" "$root/wp-config.php"
cp "$here/mu-plugins/cps.php" "$root/wp-content/mu-plugins/cps.php"
chmod -R u=rwX,go=rX "$root"

# A reproducible tar (sorted, numeric root owner), gzip -6 without a name or a time stamp.
tar -C "$root" --sort=name --owner=0 --group=0 --numeric-owner -cf - . | gzip -6 -n >"$stage/out.tar.gz"
mv "$stage/out.tar.gz" "$out"

files=$(find "$root" -type f | wc -l)
size=$(wc -c <"$out")
end=$(date +%s.%N)
echo "$start $end" | awk -v o="$out" -v f="$files" -v s="$size" '{ printf "built %s: %s files, %s bytes, %.1f s\n", o, f, s, $2 - $1 }'
