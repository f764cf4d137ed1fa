#!/usr/bin/env bash
# Checks an example without cps: serves its archive on this machine the way the php service does
# (nginx in front of php-fpm pools with the environment a linked mysql service gives, clear_env)
# with a private MariaDB, then plays a user's first steps with curl.
#
#   examples/check-by-hand.sh wordpress|wordpress-2|mediawiki|sudoku
#
# Everything (configs, data, sockets, logs) lives in a temporary directory; the servers listen on
# 127.0.0.1 only, on ports above 20000. Every process started is stopped by its pid at the end,
# and the directory removed (KEEP=1 keeps it). HOLD=1 keeps serving after the checks, until
# interrupted. BACKENDS=N sets the number of php-fpm pools (nginx round robin). Needs nginx,
# php-fpm 8.2, mariadb-server and curl; run as root, so that the workers run as www-data and
# mariadbd as mysql, as they would on a node.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
example=${1:-}
case $example in
wordpress | wordpress-2)
	"$here/wordpress/build.sh"
	archive=$here/wordpress/build/wordpress.tar.gz
	db=1
	backends=${BACKENDS:-$([ "$example" = wordpress ] && echo 1 || echo 2)}
	;;
mediawiki)
	"$here/mediawiki/build.sh"
	archive=$here/mediawiki/build/mediawiki.tar.gz
	db=1
	backends=${BACKENDS:-2}
	;;
sudoku)
	archive=$here/sudoku/code
	db=0
	backends=${BACKENDS:-1}
	;;
*)
	echo "usage: $0 wordpress|wordpress-2|mediawiki|sudoku" >&2
	exit 2
	;;
esac
for cmd in nginx php-fpm8.2 php curl tar; do
	command -v "$cmd" >/dev/null || { echo "missing: $cmd" >&2; exit 2; }
done
if [ "$db" = 1 ]; then
	for cmd in mariadbd mariadb-install-db mariadb mariadb-admin; do
		command -v "$cmd" >/dev/null || { echo "missing: $cmd (mariadb-server)" >&2; exit 2; }
	done
fi
root=0
if [ "$(id -u)" = 0 ]; then root=1; fi

work=$(mktemp -d /tmp/cps-check.XXXXXX)
chmod 755 "$work" # mktemp makes it 0700: www-data and mysql could not enter
pids=()

stop_all() {
	local i pid n
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		pid=${pids[i]}
		kill -TERM "$pid" 2>/dev/null || continue
		for ((n = 0; n < 100; n++)); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	done
	pids=()
	if [ "${KEEP:-0}" = 1 ]; then echo "kept $work"; else rm -rf "$work"; fi
}
trap stop_all EXIT
trap 'exit 130' INT TERM

start() { # command...: runs it in the background, remembers its pid
	"$@" &
	pids+=($!)
}

failed() {
	echo "FAILED: $*" >&2
	for f in "$work"/db/error.log "$work"/fpm-*/error.log "$work"/nginx/error.log; do
		[ -s "$f" ] && { echo "--- ${f#"$work"/}" >&2; tail -n 20 "$f" >&2; }
	done
	exit 1
}
ok() { echo "ok  $*"; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
pick_base() { # 10 consecutive free ports above 20000
	local base p n
	for ((n = 0; n < 20; n++)); do
		base=$((20000 + (RANDOM % 4000) * 10))
		for ((p = base; p < base + 10; p++)); do port_free "$p" || continue 2; done
		echo "$base"
		return
	done
	return 1
}
wait_port() { # port seconds
	local n
	for ((n = 0; n < $2 * 10; n++)); do
		port_free "$1" || return 0
		sleep 0.1
	done
	return 1
}
now() { date +%s.%N; }
since() { echo "$1 $(now)" | awk '{ printf "%.2f", $2 - $1 }'; }

base=$(pick_base) || failed "no free ports"
web_port=$base
db_port=$((base + 9))
t0=$(now)

# The document root: the archive unpacked (or the directory copied); index.php or index.html at
# its root or one level down, as the php service accepts.
mkdir -p "$work/www"
if [ -d "$archive" ]; then cp -r "$archive/." "$work/www/"; else tar -xf "$archive" -C "$work/www"; fi
docroot=$work/www
if [ ! -e "$docroot/index.php" ] && [ ! -e "$docroot/index.html" ]; then
	docroot=$(find "$work/www" -mindepth 2 -maxdepth 2 \( -name index.php -o -name index.html \) -printf '%h\n' | head -n 1)
	[ -n "$docroot" ] || failed "no index.php or index.html in $archive"
fi
chmod -R go+rX "$work/www"
ok "unpacked $(find "$docroot" -type f | wc -l) files in $(since "$t0") s"

# The linked mysql service: database and user named as cps names them (after the linking service).
db_name=web
db_user=cps_link_web
db_password=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
if [ "$db" = 1 ]; then
	t=$(now)
	mkdir -p "$work/db/data"
	cat >"$work/db/my.cnf" <<EOF
[mysqld]
datadir=$work/db/data
socket=$work/db/mysqld.sock
pid-file=$work/db/mysqld.pid
log-error=$work/db/error.log
port=$db_port
bind-address=127.0.0.1
skip-name-resolve
innodb_buffer_pool_size=64M
EOF
	dbuser=()
	if [ "$root" = 1 ]; then
		chown -R mysql: "$work/db"
		dbuser=(--user=mysql)
	fi
	mariadb-install-db --defaults-file="$work/db/my.cnf" --skip-test-db "${dbuser[@]}" >"$work/db/install.log" 2>&1 ||
		failed "mariadb-install-db (see $work/db/install.log)"
	start mariadbd --defaults-file="$work/db/my.cnf" "${dbuser[@]}"
	admin=(--socket="$work/db/mysqld.sock" -u "$(id -un)")
	for ((n = 0; n < 100; n++)); do
		mariadb-admin "${admin[@]}" ping >/dev/null 2>&1 && break
		sleep 0.1
	done
	mariadb "${admin[@]}" <<EOF || failed "creating the database"
CREATE DATABASE $db_name;
CREATE USER '$db_user'@'127.0.0.1' IDENTIFIED BY '$db_password';
GRANT ALL ON $db_name.* TO '$db_user'@'127.0.0.1';
EOF
	ok "mariadbd on 127.0.0.1:$db_port, database $db_name, user $db_user, in $(since "$t") s"
fi

# php-fpm: a private php.ini and extension list (PHP_INI_SCAN_DIR, else /etc's conf.d is read too),
# one pool per backend with the environment of the php service and clear_env.
t=$(now)
mkdir -p "$work/php/conf.d" "$work/php/tmp"
if [ "$root" = 1 ]; then chown www-data: "$work/php/tmp"; fi
extdir=$(php -r 'echo ini_get("extension_dir");')
{
	for e in mysqlnd mysqli pdo pdo_mysql ctype curl dom exif fileinfo gd iconv intl mbstring posix \
		simplexml sockets tokenizer xml xmlreader xmlwriter zip; do
		if [ -f "$extdir/$e.so" ]; then echo "extension=$e"; fi
	done
	if [ -f "$extdir/opcache.so" ]; then echo "zend_extension=opcache"; fi
} >"$work/php/conf.d/10-extensions.ini"
cat >"$work/php/php.ini" <<EOF
memory_limit = 256M
max_execution_time = 60
post_max_size = 32M
upload_max_filesize = 32M
display_errors = Off
log_errors = On
error_reporting = E_ALL & ~E_DEPRECATED & ~E_STRICT
date.timezone = UTC
expose_php = Off
opcache.enable = 1
sys_temp_dir = $work/php/tmp
upload_tmp_dir = $work/php/tmp
EOF
secret=$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
upstreams=""
for ((i = 1; i <= backends; i++)); do
	mkdir -p "$work/fpm-$i"
	{
		cat <<EOF
[global]
pid = $work/fpm-$i/php-fpm.pid
error_log = $work/fpm-$i/error.log
daemonize = no

[web]
listen = 127.0.0.1:$((base + i))
pm = static
pm.max_children = 2
clear_env = yes
catch_workers_output = yes
decorate_workers_output = no
env[CPS_SECRET] = "$secret"
env[CPS_SERVICE] = web
EOF
		if [ "$root" = 1 ]; then printf 'user = www-data\ngroup = www-data\n'; fi
		if [ "$db" = 1 ]; then
			cat <<EOF
env[MYSQL_HOST] = 127.0.0.1
env[MYSQL_IP] = 127.0.0.1
env[MYSQL_PORT] = $db_port
env[MYSQL_DATABASE] = $db_name
env[MYSQL_USER] = $db_user
env[MYSQL_PASSWORD] = $db_password
EOF
		fi
	} >"$work/fpm-$i/pool.conf"
	chmod 600 "$work/fpm-$i/pool.conf"
	start env PHP_INI_SCAN_DIR="$work/php/conf.d" php-fpm8.2 -F -y "$work/fpm-$i/pool.conf" -c "$work/php/php.ini"
	upstreams="$upstreams server 127.0.0.1:$((base + i));"
done
for ((i = 1; i <= backends; i++)); do wait_port $((base + i)) 10 || failed "php-fpm $i does not listen"; done
ok "$backends php-fpm pool(s) on 127.0.0.1:$((base + 1))..$((base + backends)) in $(since "$t") s"

# nginx: try_files to index.php, HTTP_HOST with the port, all paths under the work dir.
t=$(now)
mkdir -p "$work/nginx/tmp"
cat >"$work/nginx/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log warn;
events { worker_connections 256; }
http {
  include /etc/nginx/mime.types;
  default_type application/octet-stream;
  log_format check '\$status \$request_time \$upstream_addr "\$request"';
  access_log $work/nginx/access.log check;
  client_body_temp_path $work/nginx/tmp/body;
  fastcgi_temp_path $work/nginx/tmp/fastcgi;
  proxy_temp_path $work/nginx/tmp/proxy;
  uwsgi_temp_path $work/nginx/tmp/uwsgi;
  scgi_temp_path $work/nginx/tmp/scgi;
  client_max_body_size 32m;
  upstream php { $upstreams }
  server {
    listen 127.0.0.1:$web_port;
    root $docroot;
    index index.php index.html;
    location / { try_files \$uri \$uri/ /index.php\$is_args\$args; }
    location ~ /\.(?!well-known/) { deny all; }
    location ~ \.php\$ {
      try_files \$uri =404;
      fastcgi_param QUERY_STRING \$query_string;
      fastcgi_param REQUEST_METHOD \$request_method;
      fastcgi_param CONTENT_TYPE \$content_type;
      fastcgi_param CONTENT_LENGTH \$content_length;
      fastcgi_param SCRIPT_NAME \$fastcgi_script_name;
      fastcgi_param SCRIPT_FILENAME \$document_root\$fastcgi_script_name;
      fastcgi_param REQUEST_URI \$request_uri;
      fastcgi_param DOCUMENT_URI \$document_uri;
      fastcgi_param DOCUMENT_ROOT \$document_root;
      fastcgi_param SERVER_PROTOCOL \$server_protocol;
      fastcgi_param REQUEST_SCHEME \$scheme;
      fastcgi_param HTTPS \$https if_not_empty;
      fastcgi_param GATEWAY_INTERFACE CGI/1.1;
      fastcgi_param SERVER_SOFTWARE nginx;
      fastcgi_param REMOTE_ADDR \$remote_addr;
      fastcgi_param REMOTE_PORT \$remote_port;
      fastcgi_param SERVER_ADDR \$server_addr;
      fastcgi_param SERVER_PORT \$server_port;
      fastcgi_param SERVER_NAME \$server_name;
      fastcgi_param REDIRECT_STATUS 200;
      fastcgi_param HTTP_HOST \$host:\$server_port;
      fastcgi_pass php;
    }
  }
}
EOF
start nginx -p "$work/nginx" -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" -g 'daemon off;'
wait_port "$web_port" 10 || failed "nginx does not listen"
B=http://127.0.0.1:$web_port
ok "nginx on $B in $(since "$t") s (all started in $(since "$t0") s)"

# curl: -w prints the status; the body goes to $work/body.
jar=$work/cookies
http() { curl -sS -o "$work/body" -w '%{http_code} %{time_total}' "$@"; }
expect() { # "code time" wanted-code what
	local code=${1%% *} time=${1#* }
	[ "$code" = "$2" ] || failed "$3: HTTP $code, wanted $2: $(head -c 400 "$work/body")"
	ok "$3: HTTP $code in ${time} s"
}
body_has() { grep -q -- "$1" "$work/body" || failed "$2: the body lacks '$1': $(head -c 400 "$work/body")"; }
json() { php -r '$d = json_decode(stream_get_contents(STDIN), true); foreach (explode(".", $argv[1]) as $k) $d = $d[$k] ?? null; echo is_scalar($d) ? $d : json_encode($d);' "$1" <"$work/body"; }

check_wordpress() {
	local pw title nonce link
	out=$(env -i php "$docroot/wp-config.php" 2>&1 || true)
	case $out in *MYSQL_HOST*CPS_SECRET*) ok "wp-config.php without the environment names what is missing" ;;
	*) failed "wp-config.php without the environment said: $out" ;; esac

	# What a browser sees first: / sends to the installer, whose first page is the form (the
	# language list would come from wordpress.org: blocked, so English at once).
	r=$(http "$B/")
	expect "$r" 302 "GET / before the install"
	r=$(http -L "$B/")
	expect "$r" 200 "GET / before the install, redirects followed"
	body_has 'name="weblog_title"' "the installer's form"

	pw=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
	r=$(http --data-urlencode weblog_title="cps check" --data-urlencode user_name=admin \
		--data-urlencode admin_password="$pw" --data-urlencode admin_password2="$pw" --data-urlencode pw_weak=on \
		--data-urlencode admin_email=admin@example.test --data-urlencode blog_public=0 "$B/wp-admin/install.php?step=2")
	expect "$r" 200 "install (step 2)"
	body_has '<h1>Success!</h1>' "install"

	r=$(http -c "$jar" -b 'wordpress_test_cookie=WP%20Cookie%20check' --data-urlencode log=admin \
		--data-urlencode pwd="$pw" --data-urlencode 'wp-submit=Log In' --data-urlencode redirect_to="$B/wp-admin/" \
		--data-urlencode testcookie=1 "$B/wp-login.php")
	expect "$r" 302 "log in"

	r=$(http -b "$jar" "$B/wp-admin/admin-ajax.php?action=rest-nonce")
	expect "$r" 200 "REST nonce"
	nonce=$(cat "$work/body")
	[[ $nonce =~ ^[0-9a-f]{10}$ ]] || failed "REST nonce: '$nonce'"

	title="Checked by hand $(date +%s)"
	r=$(http -b "$jar" -H "X-WP-Nonce: $nonce" -H 'Content-Type: application/json' \
		-d "{\"title\":\"$title\",\"content\":\"Posted through the REST API.\",\"status\":\"publish\"}" "$B/wp-json/wp/v2/posts")
	expect "$r" 201 "REST post"
	link=$(json link)
	case $link in "$B"/*) ;; *) failed "the post's link $link is not under $B" ;; esac

	r=$(http "$link")
	expect "$r" 200 "anonymous GET of the post ($link)"
	body_has "$title" "the post"
	r=$(http "$B/")
	expect "$r" 200 "anonymous GET of the front page"
	body_has "$title" "the front page"
	if grep -q 'http://127.0.0.1/' "$work/body"; then failed "the front page links to http://127.0.0.1/ (port lost)"; fi
	ok "front page: $(wc -c <"$work/body") bytes, links carry the port"
	assets=$(grep -o "$B/wp-[a-z]*/[^\"' )?]*\.\(css\|js\)" "$work/body" | sort -u)
	for a in $assets; do
		code=$(curl -sS -o /dev/null -w '%{http_code}' "$a")
		[ "$code" = 200 ] || failed "$a: HTTP $code"
	done
	ok "the front page's $(echo "$assets" | wc -w) scripts and styles: HTTP 200"

	r=$(http -b "$jar" "$B/wp-admin/")
	expect "$r" 200 "dashboard (logged in)"
	r=$(http -b "$jar" "$B/wp-admin/post-new.php")
	expect "$r" 200 "block editor (logged in)"
	body_has 'wp-includes/js/dist/' "block editor"

	# The archive drops x.js and x.css where x.min.js or x.min.css exists: every script and style
	# WordPress registers (core, admin, blocks, theme) must still have its file. A probe file in the
	# served copy (not in the archive) asks WordPress itself.
	cat >"$docroot/cps-probe.php" <<'PHP'
<?php
require __DIR__ . '/wp-load.php';
wp_register_tinymce_scripts(wp_scripts());
$base = rtrim((string) wp_parse_url(site_url(), PHP_URL_PATH), '/');
$host = wp_parse_url(site_url(), PHP_URL_HOST);
$n = 0;
$missing = [];
foreach ([wp_scripts(), wp_styles()] as $deps) {
	foreach ($deps->registered as $handle => $dep) {
		if (!is_string($dep->src) || $dep->src === '') continue;
		$h = wp_parse_url($dep->src, PHP_URL_HOST);
		if ($h !== null && $h !== $host) continue; // a CDN's (prototype, Google fonts): not ours
		$path = (string) wp_parse_url($dep->src, PHP_URL_PATH);
		if ($base !== '' && str_starts_with($path, $base)) $path = substr($path, strlen($base));
		$n++;
		if (!is_file(ABSPATH . ltrim($path, '/'))) $missing[] = "$handle $path";
	}
}
echo json_encode(['registered' => $n, 'missing' => $missing]);
PHP
	r=$(http "$B/cps-probe.php")
	rm -f "$docroot/cps-probe.php"
	expect "$r" 200 "probe of the registered scripts and styles"
	[ "$(json missing)" = "[]" ] || failed "files missing: $(json missing)"
	ok "$(json registered) registered scripts and styles, none missing"
}

check_mediawiki() {
	local stamp token pids2 i
	out=$(env -i php -r 'define("MEDIAWIKI", 1); include $argv[1];' "$docroot/LocalSettings.php" 2>&1 || true)
	case $out in *MYSQL_HOST*CPS_SECRET*) ok "LocalSettings.php without the environment names what is missing" ;;
	*) failed "LocalSettings.php without the environment said: $out" ;; esac

	# The first requests, one per backend at once: one makes the schema, the others wait for it.
	pids2=()
	for ((i = 1; i <= backends; i++)); do
		curl -sS -L -o "$work/first-$i" -w "%{http_code} %{time_total} %{url_effective}" "$B/" >"$work/first-$i.status" &
		pids2+=($!)
	done
	for p in "${pids2[@]}"; do wait "$p" || failed "first request"; done
	for ((i = 1; i <= backends; i++)); do
		cp "$work/first-$i" "$work/body"
		read -r code time url <"$work/first-$i.status" || true
		[ "$url" = "$B/index.php?title=Main_Page" ] || failed "/ led to $url"
		expect "$code $time" 200 "first request $i of $backends at once (/, led to $url)"
		body_has "linked <code>mysql</code> service" "main page"
	done
	tables=$(mariadb "${admin[@]}" -N -e "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = '$db_name'")
	pages=$(mariadb "${admin[@]}" -N -e "SELECT COUNT(*) FROM $db_name.page")
	[ "$pages" = 1 ] || failed "$pages pages after the first requests"
	ok "schema: $tables tables, $pages page"

	r=$(http "$B/index.php?title=Main_Page")
	expect "$r" 200 "main page again"

	r=$(http -c "$jar" -b "$jar" "$B/api.php?action=query&meta=tokens&format=json")
	expect "$r" 200 "edit token"
	token=$(json query.tokens.csrftoken)
	[ -n "$token" ] || failed "no token"
	stamp="Checked by hand $(date +%s)"
	r=$(http -c "$jar" -b "$jar" --data-urlencode action=edit --data-urlencode title=Cps_check \
		--data-urlencode text="'''$stamp''', an anonymous edit through api.php." --data-urlencode summary=check \
		--data-urlencode format=json --data-urlencode token="$token" "$B/api.php")
	expect "$r" 200 "anonymous edit through api.php"
	[ "$(json edit.result)" = Success ] || failed "edit: $(cat "$work/body")"
	r=$(http "$B/index.php?title=Cps_check")
	expect "$r" 200 "GET index.php?title=Cps_check"
	body_has "$stamp" "the edited page"
	r=$(http "$B/index.php?title=Special:RecentChanges")
	expect "$r" 200 "recent changes"
	body_has "Cps check" "recent changes"
	# ResourceLoader: the startup module (it hashes every module's files, those of other
	# languages included) and the modules the main page and the edit page ask for.
	r=$(http "$B/load.php?lang=en&modules=startup&only=scripts&raw=1&skin=vector-2022")
	expect "$r" 200 "load.php startup module"
	r=$(http "$B/index.php?title=Sandbox&action=edit")
	expect "$r" 200 "edit page"
	body_has 'wpTextbox1' "edit page"
	modules=$(grep -o 'RLPAGEMODULES=[^;]*' "$work/body" "$work/first-1" | grep -o '"[^"]*"' | tr -d '"' | sort -u)
	for m in $modules; do
		r=$(http "$B/load.php?lang=en&modules=$m&skin=vector-2022")
		[ "${r%% *}" = 200 ] || failed "load.php module $m: HTTP ${r%% *}"
		if grep -q 'Problematic modules\|"error"' "$work/body"; then failed "load.php module $m: $(head -c 300 "$work/body")"; fi
	done
	ok "load.php: $(echo "$modules" | wc -w) page modules, no error"
}

check_sudoku() {
	local puzzle solution wrong form i
	r=$(http "$B/?seed=42&level=medium")
	expect "$r" 200 "puzzle 42"
	body_has '<title>Sudoku' "the page"
	r=$(http "$B/?seed=42&level=medium&format=json")
	expect "$r" 200 "puzzle 42 as JSON"
	puzzle=$(json puzzle)
	# Solved here by a backtracking solver of its own, not the app's.
	solution=$(php -r '
		$g = array_map("intval", str_split($argv[1]));
		$ok = function (array $g, int $i, int $d): bool {
			[$r, $c] = [intdiv($i, 9), $i % 9];
			for ($k = 0; $k < 9; $k++) {
				if ($g[$r * 9 + $k] === $d || $g[$k * 9 + $c] === $d) return false;
				if ($g[(intdiv($r, 3) * 3 + intdiv($k, 3)) * 9 + intdiv($c, 3) * 3 + $k % 3] === $d) return false;
			}
			return true;
		};
		$solve = function (array &$g) use (&$solve, $ok): bool {
			$i = array_search(0, $g, true);
			if ($i === false) return true;
			for ($d = 1; $d <= 9; $d++) if ($ok($g, $i, $d)) { $g[$i] = $d; if ($solve($g)) return true; }
			$g[$i] = 0;
			return false;
		};
		echo $solve($g) ? implode("", $g) : "none";' "$puzzle")
	[[ $solution =~ ^[1-9]{81}$ ]] || failed "puzzle $puzzle: no solution found here"
	r=$(http --data-urlencode solution="$solution" "$B/?seed=42&level=medium")
	expect "$r" 200 "POST of the right solution"
	body_has 'Solved!' "right solution"
	# The form's way: one field per empty cell.
	form=()
	for ((i = 0; i < 81; i++)); do
		[ "${puzzle:i:1}" = 0 ] && form+=(--data-urlencode "cell[$i]=${solution:i:1}")
	done
	r=$(http "${form[@]}" "$B/?seed=42&level=medium")
	expect "$r" 200 "POST of the form, filled in ($((${#form[@]} / 2)) cells)"
	body_has 'Solved!' "form"
	# A wrong one: the first empty cell given its right neighbour's digit, and vice versa.
	i=$(php -r 'echo strpos($argv[1], "0");' "$puzzle")
	wrong=$(php -r '$s = $argv[1]; $i = (int)$argv[2]; $j = $i % 9 < 8 ? $i + 1 : $i - 1; [$s[$i], $s[$j]] = [$s[$j], $s[$i]]; echo $s;' "$solution" "$i")
	r=$(http --data-urlencode solution="$wrong" "$B/?seed=42&level=medium")
	expect "$r" 200 "POST of a wrong solution"
	body_has 'Not solved yet' "wrong solution"
	ok "wrong solution answered: $(grep -o 'Not solved yet:[^<]*' "$work/body")"
}

t=$(now)
case $example in
wordpress | wordpress-2) check_wordpress ;;
mediawiki) check_mediawiki ;;
sudoku) check_sudoku ;;
esac
errors=$(cat "$work"/fpm-*/error.log | grep -c -i -E 'PHP (Fatal|Warning)' || true)
per_backend=$(awk '$3 ~ /:/ { n[$3]++ } END { for (u in n) printf "%s%s: %s", (s++ ? ", " : ""), u, n[u] }' "$work/nginx/access.log")
ok "checks in $(since "$t") s; requests per backend: ${per_backend:-none}; PHP warnings or errors: $errors"
[ "$errors" = 0 ] || { grep -i -E 'PHP (Fatal|Warning)' "$work"/fpm-*/error.log | head -n 10; failed "PHP logged errors"; }
echo "PASSED $example"
if [ "${HOLD:-0}" = 1 ]; then
	echo "serving $B until interrupted (Ctrl-C, or kill $$)"
	while :; do sleep 1; done
fi
