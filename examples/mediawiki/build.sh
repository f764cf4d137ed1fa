#!/bin/sh
# Builds build/mediawiki.tar.gz, the document root of the `web` service, from Debian's mediawiki
# package (1.39): the code of /usr/share/mediawiki with its symlinks followed, one skin (Vector),
# no extension, English only, and our LocalSettings.php and cps-schema.php, which read everything
# from the environment and make the database's schema on first use. Installs the package when
# missing (apt-get, as root). Does nothing when the archive is newer than all its inputs; FORCE=1
# rebuilds anyway.
. "$(dirname "$0")/../lib/build-archive.sh"

src=/usr/share/mediawiki
skin=Vector
out=$here/build/mediawiki.tar.gz

if [ ! -f "$src/includes/Setup.php" ] || [ ! -d "$src/skins/$skin" ]; then
	install_packages mediawiki
fi

# What the archive takes from the package. Left out: LocalSettings.php, config and images (links
# into /var/lib/mediawiki and /etc/mediawiki), the extensions and the other skins.
code="api.php autoload.php composer.json img_auth.php index.php load.php opensearch_desc.php rest.php
thumb.php thumb_handler.php includes languages maintenance mw-config resources vendor"
ours="LocalSettings.php cps-schema.php"

inputs=""
for p in $code; do inputs="$inputs $src/$p"; done
skip_if_up_to_date $inputs "$src/skins/$skin" $ours

begin_stage
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
pack_archive entries
