<?php
/**
 * WordPress configuration for a cps `php` service linked to a `mysql` service.
 *
 * Everything comes from the php-fpm workers' environment, so the archive holds no secret and the
 * same archive runs on every backend:
 *   MYSQL_HOST, MYSQL_PORT, MYSQL_DATABASE, MYSQL_USER, MYSQL_PASSWORD  the linked mysql service
 *                                                                      (link name `db`)
 *   CPS_SECRET   the php service's secret: WordPress's 8 keys and salts are derived from it, so a
 *                login cookie or a nonce made on one backend is valid on the others
 *   WORDPRESS_URL (optional) the site's public URL; without it, the URL of each request
 *                (its scheme and its Host header, port included) is the site's URL
 * A missing variable is answered with a 503 that names it.
 */

$cps_env = [];
$cps_missing = [];
foreach (['MYSQL_HOST', 'MYSQL_PORT', 'MYSQL_DATABASE', 'MYSQL_USER', 'MYSQL_PASSWORD', 'CPS_SECRET'] as $cps_name) {
	$cps_value = getenv($cps_name);
	if ($cps_value === false || $cps_value === '') {
		$cps_missing[] = $cps_name;
	} else {
		$cps_env[$cps_name] = $cps_value;
	}
}
if ($cps_missing) {
	if (PHP_SAPI !== 'cli') {
		http_response_code(503);
		header('Content-Type: text/plain; charset=utf-8');
		header('Retry-After: 30');
		header('Cache-Control: no-store');
	}
	echo 'WordPress is not configured: missing environment variable(s) ', implode(', ', $cps_missing), '.',
		preg_grep('/^MYSQL_/', $cps_missing) ? ' Link a mysql service as "db" (manifest "Links": {"db": "db"}).' : '',
		in_array('CPS_SECRET', $cps_missing, true) ? ' CPS_SECRET comes from the php service.' : '', "\n";
	exit(1);
}

// The database: DB_HOST is host:port ([v6-address]:port for an IPv6 literal).
$cps_host = $cps_env['MYSQL_HOST'];
if (strpos($cps_host, ':') !== false && $cps_host[0] !== '[') {
	$cps_host = '[' . $cps_host . ']';
}
define('DB_NAME', $cps_env['MYSQL_DATABASE']);
define('DB_USER', $cps_env['MYSQL_USER']);
define('DB_PASSWORD', $cps_env['MYSQL_PASSWORD']);
define('DB_HOST', $cps_host . ':' . $cps_env['MYSQL_PORT']);
define('DB_CHARSET', 'utf8mb4');
define('DB_COLLATE', '');
$table_prefix = 'wp_';
// Debian's install.php stores these two as the upload path options: empty, the default
// (wp-content/uploads under the document root).
$upload_path = '';
$upload_url_path = '';

// Keys and salts: HMAC-SHA256 of each name under CPS_SECRET (stable for the service, the same on
// every backend; changing the secret logs everybody out).
foreach (['AUTH_KEY', 'SECURE_AUTH_KEY', 'LOGGED_IN_KEY', 'NONCE_KEY',
		'AUTH_SALT', 'SECURE_AUTH_SALT', 'LOGGED_IN_SALT', 'NONCE_SALT'] as $cps_name) {
	define($cps_name, hash_hmac('sha256', 'wordpress/' . $cps_name, $cps_env['CPS_SECRET']));
}

// The site's URL: WORDPRESS_URL, else the request's scheme and Host (the port included). Without
// either (WP-CLI with no --url), WordPress uses the URL stored in its options.
$cps_url = getenv('WORDPRESS_URL');
if ($cps_url !== false && $cps_url !== '') {
	$cps_url = rtrim($cps_url, '/');
} elseif (isset($_SERVER['HTTP_HOST']) && preg_match('/^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/', $_SERVER['HTTP_HOST'])) {
	$cps_https = !empty($_SERVER['HTTPS']) && strtolower($_SERVER['HTTPS']) !== 'off';
	$cps_url = ($cps_https ? 'https://' : 'http://') . strtolower($_SERVER['HTTP_HOST']);
} else {
	$cps_url = null;
}
if ($cps_url !== null) {
	define('WP_HOME', $cps_url);
	define('WP_SITEURL', $cps_url);
}

$cps_type = getenv('WORDPRESS_ENVIRONMENT_TYPE');
if (in_array($cps_type, ['local', 'development', 'staging', 'production'], true)) {
	define('WP_ENVIRONMENT_TYPE', $cps_type);
}

// The code is read-only in spirit (a new version is a new archive) and every backend has its own
// copy: no updates, no plugin or theme installs from the dashboard, no calls to wordpress.org
// (wp-content/mu-plugins/cps.php also drops the update checks, which would only fail).
define('WP_HTTP_BLOCK_EXTERNAL', true);
define('AUTOMATIC_UPDATER_DISABLED', true);
define('WP_AUTO_UPDATE_CORE', false);
define('DISALLOW_FILE_MODS', true);
define('DISALLOW_FILE_EDIT', true);
// The archive ships only the minified scripts and styles.
define('SCRIPT_DEBUG', false);
define('WP_DEBUG', false);

unset($cps_env, $cps_missing, $cps_name, $cps_value, $cps_host, $cps_url, $cps_https, $cps_type);

if (!defined('ABSPATH')) {
	define('ABSPATH', __DIR__ . '/');
}
require_once ABSPATH . 'wp-settings.php';
