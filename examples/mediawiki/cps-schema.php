<?php
/**
 * MediaWiki's database schema and main page, made on first use: deploying the archive is all it
 * takes, with no installer to run. Included by LocalSettings.php.
 *
 * On a web request, ensureSchema() asks the database (a connection of its own) whether the
 * schema is complete (our key in `updatelog`) and a page exists. If not, it takes a MySQL named
 * lock (GET_LOCK, so that two backends never do it at once; the others wait, then find it done),
 * looks again and, if still needed:
 *  1. runs MediaWiki's own schema, maintenance/tables-generated.sql (the MySQL flavour), with the
 *     `/*_*\/` table prefix and the `/*$wgDBTableOptions*\/` placeholders filled in, as
 *     `CREATE TABLE IF NOT EXISTS` (an attempt cut short is completed by the next), and the
 *     full-text `searchindex` table in InnoDB instead of MyISAM (one engine for the replica and
 *     the backups);
 *  2. runs maintenance/update-keys.sql (marks the updates a fresh install needs not run), adds
 *     the `site_stats` row, then our key in `updatelog`;
 *  3. asks LocalSettings.php to create the main page once MediaWiki is set up (createMainPage(),
 *     a $wgExtensionFunctions entry), as MediaWiki's installer does. The lock is held until the
 *     request ends, after MediaWiki has committed the page.
 * Once all is there, a marker file in the system's temporary directory spares each later request
 * on this backend the question (the marker is named after the database's coordinates).
 */

namespace Cps\MediaWiki;

use MediaWiki\MediaWikiServices;

const LOCK = 'cps-mediawiki-schema';
const DONE_KEY = 'cps-schema-made';

/** Answers 503 with $message (plain text) and stops. */
function unavailable(string $message): never
{
	if (PHP_SAPI === 'cli') {
		fwrite(STDERR, $message . "\n");
		exit(1);
	}
	http_response_code(503);
	header('Content-Type: text/plain; charset=utf-8');
	header('Retry-After: 30');
	header('Cache-Control: no-store');
	echo $message, "\n";
	exit;
}

/** $url without its trailing slash, else the request's scheme://host[:port], else http://localhost. */
function serverUrl(?string $url): string
{
	if ($url !== null && preg_match('#^https?://[^/?\#]+#', $url)) {
		return rtrim($url, '/');
	}
	$host = $_SERVER['HTTP_HOST'] ?? '';
	if (!preg_match('/^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$/', $host)) {
		return 'http://localhost';
	}
	$https = !empty($_SERVER['HTTPS']) && strtolower($_SERVER['HTTPS']) !== 'off';
	return ($https ? 'https://' : 'http://') . strtolower($host);
}

/** The connection holding the lock until the request ends (when PHP closes it). */
$GLOBALS['cpsSchemaLock'] = null;
/** The marker file to write once the main page is made. */
$GLOBALS['cpsSchemaMarker'] = null;

/**
 * Makes the schema when it is missing; true when the caller must have the main page created (the
 * lock is then held until the request ends).
 */
function ensureSchema(string $host, int $port, string $name, string $user, string $password,
	string $tableOptions, string $maintenanceDir): bool
{
	$marker = sys_get_temp_dir() . '/cps-mediawiki-' .
		substr(hash('sha256', implode("\n", [$host, $port, $name, $user, $password])), 0, 32) . '.ready';
	if (is_file($marker)) {
		return false;
	}
	mysqli_report(MYSQLI_REPORT_OFF);
	$db = mysqli_init();
	$db->options(MYSQLI_OPT_CONNECT_TIMEOUT, 10);
	$db->options(MYSQLI_OPT_READ_TIMEOUT, 90); // above GET_LOCK's 60 s
	if (!@$db->real_connect($host, $user, $password, $name, $port)) {
		unavailable('The wiki\'s database is unreachable (' . mysqli_connect_error() . '); retry in a moment.');
	}
	if (state($db) === 'ready') {
		$db->close();
		@touch($marker);
		return false;
	}
	$got = $db->query("SELECT GET_LOCK('" . LOCK . "', 60)");
	if ($got === false || (int)($got->fetch_row()[0] ?? 0) !== 1) {
		unavailable('Another request is making the wiki\'s database; retry in a minute.');
	}
	$state = state($db);
	if ($state === 'empty') {
		createTables($db, $tableOptions, $maintenanceDir);
		$state = state($db);
	}
	if ($state === 'ready') {
		$db->query("SELECT RELEASE_LOCK('" . LOCK . "')");
		$db->close();
		@touch($marker);
		return false;
	}
	$GLOBALS['cpsSchemaLock'] = $db;
	$GLOBALS['cpsSchemaMarker'] = $marker;
	return true;
}

/** 'empty' (no or partial schema), 'no-page' (schema made, no page yet) or 'ready'. */
function state(\mysqli $db): string
{
	$r = $db->query("SELECT (SELECT COUNT(*) FROM updatelog WHERE ul_key = '" . DONE_KEY . "'), " .
		'EXISTS (SELECT 1 FROM page)');
	if ($r === false) {
		if ($db->errno === 1146) { // ER_NO_SUCH_TABLE
			return 'empty';
		}
		unavailable("The wiki's database answered an error ({$db->errno}); retry in a moment.");
	}
	[$done, $pages] = $r->fetch_row();
	if ((int)$done === 0) {
		return 'empty';
	}
	return (int)$pages === 0 ? 'no-page' : 'ready';
}

/** Runs tables-generated.sql and update-keys.sql, adds the site_stats row and our key. */
function createTables(\mysqli $db, string $tableOptions, string $maintenanceDir): void
{
	$statements = [];
	foreach (['tables-generated.sql', 'update-keys.sql'] as $file) {
		$sql = file_get_contents("$maintenanceDir/$file");
		if ($sql === false) {
			unavailable("The wiki's code lacks maintenance/$file.");
		}
		$sql = preg_replace('/^--.*$/m', '', $sql);
		foreach (preg_split('/;\s*$/m', $sql) as $statement) {
			$statement = trim($statement);
			if ($statement === '') {
				continue;
			}
			$statement = strtr($statement, ['/*_*/' => '', '/*$wgDBTableOptions*/' => $tableOptions]);
			$statement = preg_replace('/^CREATE TABLE (?!IF NOT EXISTS)/', 'CREATE TABLE IF NOT EXISTS ', $statement);
			$statement = preg_replace('/\bENGINE\s*=\s*MyISAM\b/i', 'ENGINE = InnoDB', $statement);
			$statements[] = $statement;
		}
	}
	$statements[] = 'INSERT IGNORE INTO site_stats (ss_row_id, ss_total_edits, ss_good_articles, ' .
		'ss_total_pages, ss_users, ss_active_users, ss_images) VALUES (1, 0, 0, 0, 0, 0, 0)';
	$statements[] = "INSERT IGNORE INTO updatelog (ul_key, ul_value) VALUES ('" . DONE_KEY . "', NULL)";
	foreach ($statements as $statement) {
		if ($db->query($statement) === false) {
			error_log("cps-schema: {$db->errno} {$db->error} in: " . substr($statement, 0, 200));
			unavailable("Making the wiki's database failed ({$db->errno}: {$db->error}); retry in a moment.");
		}
	}
}

/** Creates the main page as the system user "MediaWiki default" (a $wgExtensionFunctions entry). */
function createMainPage(): void
{
	$title = \Title::newMainPage();
	if (!$title->exists()) {
		$page = MediaWikiServices::getInstance()->getWikiPageFactory()->newFromTitle($title);
		$status = $page->doUserEditContent(
			new \WikitextContent(mainPageText()),
			\User::newSystemUser('MediaWiki default', ['steal' => true]),
			'Main page, made with the database on first use',
			EDIT_NEW
		);
		if (!$status->isOK()) {
			throw new \RuntimeException('cps-schema: the main page was not created: ' . $status->getWikiText());
		}
	}
	if ($GLOBALS['cpsSchemaMarker'] !== null) {
		@touch($GLOBALS['cpsSchemaMarker']);
	}
}

function mainPageText(): string
{
	return <<<'WIKI'
'''{{SITENAME}}''' is MediaWiki running on cps: a <code>php</code> service serves the wiki's code
on its backends, and a linked <code>mysql</code> service holds the pages. The database's tables and
this page were made on the first request.

Anyone can read and edit, without an account: try the [[Sandbox]], or edit this page.

== Good to know ==
* Uploads are off: a file would be kept only by the backend that received it.
* The wiki speaks English only and has the Vector skin, no extension.
* [[Special:RecentChanges|Recent changes]] lists every edit; [[Special:Version]] tells what runs.
WIKI;
}
