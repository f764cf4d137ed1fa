<?php
/**
 * MediaWiki settings for a cps `php` service linked to a `mysql` service.
 *
 * Everything comes from the php-fpm workers' environment, so the archive holds no secret and the
 * same archive runs on every backend:
 *   MYSQL_HOST, MYSQL_PORT, MYSQL_DATABASE, MYSQL_USER, MYSQL_PASSWORD  the linked mysql service
 *                                                                      (link name `db`)
 *   CPS_SECRET     the php service's secret: $wgSecretKey and $wgUpgradeKey are derived from it,
 *                  the same on every backend
 *   MEDIAWIKI_URL  (optional) the wiki's public URL (scheme://host[:port]); without it, the
 *                  scheme and the Host header (port included) of each request
 * A missing variable is answered with a 503 that names it. On first use, cps-schema.php makes the
 * database's tables and the main page (see there).
 */

if (!defined('MEDIAWIKI')) {
	exit;
}

$cpsEnv = [];
$cpsMissing = [];
foreach (['MYSQL_HOST', 'MYSQL_PORT', 'MYSQL_DATABASE', 'MYSQL_USER', 'MYSQL_PASSWORD', 'CPS_SECRET'] as $cpsName) {
	$cpsValue = getenv($cpsName);
	if ($cpsValue === false || $cpsValue === '') {
		$cpsMissing[] = $cpsName;
	} else {
		$cpsEnv[$cpsName] = $cpsValue;
	}
}
require_once __DIR__ . '/cps-schema.php';
if ($cpsMissing) {
	Cps\MediaWiki\unavailable('MediaWiki is not configured: missing environment variable(s) ' .
		implode(', ', $cpsMissing) . '.' .
		(preg_grep('/^MYSQL_/', $cpsMissing) ? ' Link a mysql service as "db" (manifest "Links": {"db": "db"}).' : '') .
		(in_array('CPS_SECRET', $cpsMissing, true) ? ' CPS_SECRET comes from the php service.' : ''));
}

## Site and URLs: ordinary URLs (index.php?title=Page), no rewrite rule needed.
$wgSitename = 'cps wiki';
$wgMetaNamespace = 'Project';
$wgServer = Cps\MediaWiki\serverUrl(getenv('MEDIAWIKI_URL') ?: null);
$wgScriptPath = '';
$wgArticlePath = '/index.php?title=$1';
$wgUsePathInfo = false;
$wgResourceBasePath = $wgScriptPath;
$wgLanguageCode = 'en';
$wgLocaltimezone = 'UTC';
$wgDefaultSkin = 'vector-2022';
wfLoadSkin('Vector');

## The database: the linked mysql service. DB server is host:port ([v6-address]:port).
$cpsHost = $cpsEnv['MYSQL_HOST'];
if (strpos($cpsHost, ':') !== false && $cpsHost[0] !== '[') {
	$cpsHost = "[$cpsHost]";
}
$wgDBtype = 'mysql';
$wgDBserver = $cpsHost . ':' . $cpsEnv['MYSQL_PORT'];
$wgDBname = $cpsEnv['MYSQL_DATABASE'];
$wgDBuser = $cpsEnv['MYSQL_USER'];
$wgDBpassword = $cpsEnv['MYSQL_PASSWORD'];
$wgDBprefix = '';
$wgDBTableOptions = 'ENGINE=InnoDB, DEFAULT CHARSET=binary';

## Secrets: HMAC-SHA256 of a name under CPS_SECRET (stable for the service, the same on every
## backend, so sessions and tokens made on one backend hold on the others).
$wgSecretKey = hash_hmac('sha256', 'mediawiki/secret-key', $cpsEnv['CPS_SECRET']);
$wgUpgradeKey = substr(hash_hmac('sha256', 'mediawiki/upgrade-key', $cpsEnv['CPS_SECRET']), 0, 16);
$wgAuthenticationTokenVersion = '1';

## Caches: everything shared lives in the database (sessions, parser and message caches), as the
## backends share nothing else; no file cache, no localisation cache on disk (the code is
## read-only in spirit).
$wgMainCacheType = CACHE_NONE;
$wgSessionCacheType = CACHE_DB;
$wgParserCacheType = CACHE_DB;
$wgMessageCacheType = CACHE_DB;
$wgUseFileCache = false;
$wgCacheDirectory = false;
$wgLocalisationCacheConf['store'] = 'db';

## No uploads (a file would live only on the backend that received it), no mail, no calls out.
$wgEnableUploads = false;
$wgUseImageMagick = false;
$wgUseInstantCommons = false;
$wgAllowCopyUploads = false;
$wgAllowExternalImages = false;
$wgPingback = false;
$wgEnableEmail = false;
$wgEnableUserEmail = false;
$wgEnotifUserTalk = false;
$wgEnotifWatchlist = false;
$wgDiff3 = '';

## A demo: anyone may read, edit, create pages and create an account.
$wgGroupPermissions['*']['read'] = true;
$wgGroupPermissions['*']['edit'] = true;
$wgGroupPermissions['*']['createpage'] = true;
$wgGroupPermissions['*']['createtalk'] = true;
$wgGroupPermissions['*']['createaccount'] = true;

$wgRightsText = '';
$wgShowExceptionDetails = false;

## The schema and the main page, made on first use (web requests only: maintenance scripts such
## as update.php see the database as it is).
if (PHP_SAPI !== 'cli' && Cps\MediaWiki\ensureSchema(
	$cpsEnv['MYSQL_HOST'], (int)$cpsEnv['MYSQL_PORT'], $cpsEnv['MYSQL_DATABASE'], $cpsEnv['MYSQL_USER'],
	$cpsEnv['MYSQL_PASSWORD'], $wgDBTableOptions, __DIR__ . '/maintenance'
)) {
	$wgExtensionFunctions[] = 'Cps\MediaWiki\createMainPage';
}

unset($cpsEnv, $cpsMissing, $cpsName, $cpsValue, $cpsHost);
