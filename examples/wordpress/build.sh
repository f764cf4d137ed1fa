#!/bin/sh
# Builds build/wordpress.tar.gz, the document root of the `web` service, from Debian's wordpress
# package: the code of /usr/share/wordpress (its symlinks followed), one theme
# (twentytwentythree), no plugin, our wp-config.php, which reads everything from the environment,
# and our must-use plugin mu-plugins/cps.php (no update checks). Installs the packages when
# missing (apt-get, as root). Does nothing when the archive is newer than all its inputs; FORCE=1
# rebuilds anyway.
. "$(dirname "$0")/../lib/build-archive.sh"

src=/usr/share/wordpress
theme=twentytwentythree
out=$here/build/wordpress.tar.gz

if [ ! -f "$src/wp-settings.php" ] || [ ! -d "$src/wp-content/themes/$theme" ]; then
	install_packages wordpress "wordpress-theme-$theme"
fi
skip_if_up_to_date "$src" wp-config.php mu-plugins

begin_stage
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
pack_archive
