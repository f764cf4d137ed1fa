#!/bin/sh
# Builds build/mediawiki.tar.gz, the document root of the `web` service, from Debian's mediawiki
# package (1.39): the code of /usr/share/mediawiki with its symlinks followed, one skin (Vector),
# no extension, English only, and our LocalSettings.php and cps-schema.php, which read everything
# from the environment and make the database's schema on first use. Installs the package when
# missing (apt-get, as root). Does nothing when the archive is newer than all its inputs; FORCE=1
# rebuilds anyway.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
src=/usr/share/mediawiki
skin=Vector
out=$here/build/mediawiki.tar.gz

if [ ! -f "$src/includes/Setup.php" ] || [ ! -d "$src/skins/$skin" ]; then
	echo "installing Debian's mediawiki" >&2
	if [ "$(id -u)" != 0 ]; then
		echo "run as root, or: apt-get install --no-install-recommends mediawiki" >&2
		exit 1
	fi
	apt-get install -y --no-install-recommends mediawiki >&2
fi

# What the archive takes from the package. Left out: LocalSettings.php, config and images (links
# into /var/lib/mediawiki and /etc/mediawiki), the extensions and the other skins.
code="api.php autoload.php composer.json img_auth.php index.php load.php opensearch_desc.php rest.php
thumb.php thumb_handler.php includes languages maintenance mw-config resources vendor"
ours="LocalSettings.php cps-schema.php"

inputs=""
for p in $code; do inputs="$inputs $src/$p"; done
if [ "${FORCE:-0}" != 1 ] && [ -f "$out" ] &&
	[ -z "$(cd "$here" && find -L $inputs "$src/skins/$skin" $ours build.sh -newer "$out" -print -quit 2>/dev/null)" ]; then
	echo "up to date: $out"
	exit 0
fi

start=$(date +%s.%N)
mkdir -p "$here/build"
stage=$(mktemp -d "$here/build/.stage.XXXXXX")
trap 'rm -rf "$stage"' EXIT INT TERM
root=$stage/root
mkdir -p "$root/skins"

for p in $code; do cp -rL --preserve=mode,timestamps "$src/$p" "$root/"; done
cp -rL --preserve=mode,timestamps "$src/skins/$skin" "$root/skins/"

# English only: of the message files, keep en.json and MessagesEn.php (other languages then fall
# back to English; MediaWiki reads no other file for an English wiki). 13 MB and 8,200 entries
# instead of 37 MB and 10,600, over the 10,000 entries an archive may have by default.
find "$root" -type d -name i18n | while IFS= read -r d; do
	find "$d" -type f -name '*.json' ! -name en.json -delete
done
find "$root/languages/messages" -type f ! -name MessagesEn.php -delete

for f in $ours; do cp "$here/$f" "$root/$f"; done
chmod -R u=rwX,go=rX "$root"

tar -C "$root" --sort=name --owner=0 --group=0 --numeric-owner -cf - . | gzip -6 -n >"$stage/out.tar.gz"
mv "$stage/out.tar.gz" "$out"

files=$(find "$root" -type f | wc -l)
entries=$(find "$root" | wc -l)
size=$(wc -c <"$out")
end=$(date +%s.%N)
echo "$start $end" | awk -v o="$out" -v f="$files" -v e="$entries" -v s="$size" \
	'{ printf "built %s: %s files (%s entries), %s bytes, %.1f s\n", o, f, e, s, $2 - $1 }'
