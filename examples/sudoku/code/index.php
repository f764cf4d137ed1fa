<?php
/**
 * The Sudoku page. GET ?seed=N&level=easy|medium|hard shows puzzle N (a random one without a
 * seed); POST with the same seed and level checks an answer: the form's cells (`cell[i]`, i from 0
 * to 80), or `solution`, 81 digits row by row. `format=json` answers the check in JSON.
 */

declare(strict_types=1);

require __DIR__ . '/sudoku.php';

use const Sudoku\LEVELS;

$level = $_REQUEST['level'] ?? 'medium';
if (!is_string($level) || !isset(LEVELS[$level])) {
    $level = 'medium';
}
$seedParam = $_REQUEST['seed'] ?? '';
$seed = is_string($seedParam) && preg_match('/^[0-9]{1,9}$/', $seedParam)
    ? (int) $seedParam
    : random_int(1, 999_999_999);

['puzzle' => $puzzle] = Sudoku\generate($seed, $level);

$answer = null;
$result = null;
$error = null;
if ($_SERVER['REQUEST_METHOD'] === 'POST') {
    if (isset($_POST['solution']) && is_string($_POST['solution'])) {
        $answer = Sudoku\fromString($_POST['solution']);
        if ($answer === null) {
            $error = 'A solution is 81 digits, row by row (0 or . for an empty cell).';
        }
    } else {
        $cells = isset($_POST['cell']) && is_array($_POST['cell']) ? $_POST['cell'] : [];
        $answer = [];
        for ($i = 0; $i < 81; $i++) {
            $v = $cells[$i] ?? '';
            $answer[] = $puzzle[$i] !== 0 ? $puzzle[$i]
                : (is_string($v) && preg_match('/^\s*([1-9])\s*$/', $v, $m) ? (int) $m[1] : 0);
        }
    }
    if ($answer !== null) {
        $result = Sudoku\check($puzzle, $answer);
    }
}

if (($_REQUEST['format'] ?? '') === 'json') {
    header('Content-Type: application/json');
    if ($error !== null) {
        http_response_code(400);
    }
    echo json_encode([
        'seed' => $seed,
        'level' => $level,
        'puzzle' => Sudoku\toString($puzzle),
        'solved' => $result['solved'] ?? null,
        'problems' => $error !== null ? [$error] : ($result['problems'] ?? []),
    ], JSON_UNESCAPED_UNICODE), "\n";
    exit;
}

$h = static fn (string|int $s): string => htmlspecialchars((string) $s, ENT_QUOTES);
$link = static fn (int $s, string $l): string => '?' . http_build_query(['seed' => $s, 'level' => $l]);
$bad = array_flip(array_merge($result['conflicts'] ?? [], $result['changed'] ?? []));
?>
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sudoku #<?= $h($seed) ?> (<?= $h($level) ?>)</title>
<link rel="stylesheet" href="style.css">
</head>
<body>
<h1>Sudoku <small>#<?= $h($seed) ?>, <?= $h($level) ?></small></h1>
<?php if ($error !== null): ?>
<p id="result" class="bad"><?= $h($error) ?></p>
<?php elseif ($result !== null && $result['solved']): ?>
<p id="result" class="ok">Solved! Every row, column and box holds 1 to 9 exactly once.</p>
<?php elseif ($result !== null): ?>
<p id="result" class="bad">Not solved yet: <?= $h(implode('; ', $result['problems'])) ?>.</p>
<?php endif ?>
<form method="post" action="<?= $h($link($seed, $level)) ?>">
<table class="sudoku">
<?php for ($r = 0; $r < 9; $r++): ?>
<tr>
<?php for ($c = 0; $c < 9; $c++):
    $i = $r * 9 + $c;
    $class = trim(($puzzle[$i] !== 0 ? 'given' : '') . (isset($bad[$i]) ? ' bad' : ''));
    ?>
<td<?= $class !== '' ? ' class="' . $class . '"' : '' ?>><?php if ($puzzle[$i] !== 0): ?><?= $puzzle[$i] ?><?php else: ?><input name="cell[<?= $i ?>]" value="<?= $answer !== null && $answer[$i] !== 0 ? $answer[$i] : '' ?>" inputmode="numeric" maxlength="1" pattern="[1-9]" autocomplete="off" aria-label="row <?= $r + 1 ?>, column <?= $c + 1 ?>"><?php endif ?></td>
<?php endfor ?>
</tr>
<?php endfor ?>
</table>
<p><button type="submit">Check</button></p>
</form>
<p>New puzzle:
<?php foreach (array_keys(LEVELS) as $l): ?>
<a href="<?= $h($link(random_int(1, 999_999_999), $l)) ?>"><?= $h($l) ?></a>
<?php endforeach ?>
&middot; <a href="<?= $h($link($seed, $level)) ?>">link to this one</a></p>
<p class="note">Served by <?= $h(getenv('CPS_SERVICE') ?: 'php') ?> on <?= $h(gethostname() ?: 'a backend') ?>.</p>
</body>
</html>
