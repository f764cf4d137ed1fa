<?php
/**
 * Plugin Name: cps
 * Description: No update checks: the code comes from the service's archive (a new version is a new archive) and WP_HTTP_BLOCK_EXTERNAL blocks the calls to wordpress.org, which would only fail and log a warning each time.
 */

defined('ABSPATH') || exit;

foreach ([
	['admin_init', '_maybe_update_core'],
	['admin_init', '_maybe_update_plugins'],
	['admin_init', '_maybe_update_themes'],
	['wp_version_check', 'wp_version_check'],
	['wp_update_plugins', 'wp_update_plugins'],
	['wp_update_themes', 'wp_update_themes'],
	['load-plugins.php', 'wp_update_plugins'],
	['load-themes.php', 'wp_update_themes'],
	['load-update.php', 'wp_update_plugins'],
	['load-update.php', 'wp_update_themes'],
	['load-update-core.php', 'wp_update_plugins'],
	['load-update-core.php', 'wp_update_themes'],
	['wp_maybe_auto_update', 'wp_maybe_auto_update'],
	['init', 'wp_schedule_update_checks'],
] as [$cps_hook, $cps_function]) {
	remove_action($cps_hook, $cps_function);
}
unset($cps_hook, $cps_function);
