<?php
/**
 * Sudoku: a seeded generator of puzzles with a unique solution, a solver and a checker.
 * A grid is a list of 81 ints, row by row; 0 is an empty cell.
 */

declare(strict_types=1);

namespace Sudoku;

use Random\Engine\Mt19937;
use Random\Randomizer;

/** How many cells each level tries to empty (fewer when uniqueness would be lost). */
const LEVELS = ['easy' => 40, 'medium' => 48, 'hard' => 56];

/** The row, the column and the box of each cell, as the 20 other cells that see it. */
function peers(): array
{
    static $peers = null;
    if ($peers !== null) {
        return $peers;
    }
    $peers = [];
    for ($i = 0; $i < 81; $i++) {
        [$r, $c] = [intdiv($i, 9), $i % 9];
        $br = $r - $r % 3;
        $bc = $c - $c % 3;
        $p = [];
        for ($k = 0; $k < 9; $k++) {
            $p[$r * 9 + $k] = true;
            $p[$k * 9 + $c] = true;
            $p[($br + intdiv($k, 3)) * 9 + $bc + $k % 3] = true;
        }
        unset($p[$i]);
        $peers[$i] = array_keys($p);
    }
    return $peers;
}

/** The digits cell $i may take in $grid. */
function candidates(array $grid, int $i): array
{
    $used = [];
    foreach (peers()[$i] as $p) {
        $used[$grid[$p]] = true;
    }
    $out = [];
    for ($d = 1; $d <= 9; $d++) {
        if (!isset($used[$d])) {
            $out[] = $d;
        }
    }
    return $out;
}

/**
 * Counts the solutions of $grid, stopping at $limit; the first one found goes to $first.
 * Depth-first search, always on the empty cell with the fewest candidates.
 */
function countSolutions(array $grid, int $limit = 2, ?array &$first = null): int
{
    $best = -1;
    $bestCands = null;
    for ($i = 0; $i < 81; $i++) {
        if ($grid[$i] !== 0) {
            continue;
        }
        $cands = candidates($grid, $i);
        if ($cands === []) {
            return 0;
        }
        if ($bestCands === null || count($cands) < count($bestCands)) {
            [$best, $bestCands] = [$i, $cands];
            if (count($cands) === 1) {
                break;
            }
        }
    }
    if ($best < 0) {
        $first ??= $grid;
        return 1;
    }
    $found = 0;
    foreach ($bestCands as $d) {
        $grid[$best] = $d;
        $found += countSolutions($grid, $limit - $found, $first);
        if ($found >= $limit) {
            break;
        }
    }
    return $found;
}

/** The solution of $grid, or null when it has none. */
function solve(array $grid): ?array
{
    $first = null;
    return countSolutions($grid, 1, $first) > 0 ? $first : null;
}

/**
 * A puzzle and its solution, the same for the same seed and level: a full grid from a base pattern
 * shuffled (digits, rows within bands, bands, columns within stacks, stacks, transposition), then
 * cells emptied in a random order as long as the solution stays unique.
 *
 * @return array{puzzle: list<int>, solution: list<int>}
 */
function generate(int $seed, string $level): array
{
    $rnd = new Randomizer(new Mt19937($seed));
    $digits = $rnd->shuffleArray(range(1, 9));
    $lines = static function () use ($rnd): array {
        $out = [];
        foreach ($rnd->shuffleArray([0, 1, 2]) as $band) {
            foreach ($rnd->shuffleArray([0, 1, 2]) as $k) {
                $out[] = $band * 3 + $k;
            }
        }
        return $out;
    };
    $rows = $lines();
    $cols = $lines();
    $transpose = $rnd->getInt(0, 1) === 1;
    $solution = [];
    for ($r = 0; $r < 9; $r++) {
        for ($c = 0; $c < 9; $c++) {
            [$br, $bc] = [$rows[$r], $cols[$c]];
            if ($transpose) {
                [$br, $bc] = [$bc, $br];
            }
            $solution[] = $digits[(3 * ($br % 3) + intdiv($br, 3) + $bc) % 9];
        }
    }

    $puzzle = $solution;
    $target = LEVELS[$level] ?? LEVELS['medium'];
    $emptied = 0;
    foreach ($rnd->shuffleArray(range(0, 80)) as $i) {
        if ($emptied >= $target) {
            break;
        }
        $keep = $puzzle[$i];
        $puzzle[$i] = 0;
        if (countSolutions($puzzle, 2) === 1) {
            $emptied++;
        } else {
            $puzzle[$i] = $keep;
        }
    }
    return ['puzzle' => $puzzle, 'solution' => $solution];
}

/**
 * Checks an answer against the puzzle: every cell filled with a digit, the given cells unchanged,
 * no digit twice in a row, a column or a box.
 *
 * @param list<int> $puzzle
 * @param list<int> $answer 0 for a cell left empty
 * @return array{solved: bool, empty: int, changed: list<int>, conflicts: list<int>, problems: list<string>}
 */
function check(array $puzzle, array $answer): array
{
    $empty = 0;
    $changed = [];
    $conflicts = [];
    $problems = [];
    for ($i = 0; $i < 81; $i++) {
        if ($answer[$i] === 0) {
            $empty++;
        } elseif ($puzzle[$i] !== 0 && $answer[$i] !== $puzzle[$i]) {
            $changed[] = $i;
        }
    }
    $units = [];
    for ($k = 0; $k < 9; $k++) {
        $units["row " . ($k + 1)] = array_map(fn ($c) => $k * 9 + $c, range(0, 8));
        $units["column " . ($k + 1)] = array_map(fn ($r) => $r * 9 + $k, range(0, 8));
        $br = intdiv($k, 3) * 3;
        $bc = ($k % 3) * 3;
        $units["box " . ($k + 1)] = array_map(fn ($j) => ($br + intdiv($j, 3)) * 9 + $bc + $j % 3, range(0, 8));
    }
    foreach ($units as $name => $cells) {
        $seen = [];
        foreach ($cells as $i) {
            $d = $answer[$i];
            if ($d !== 0) {
                $seen[$d][] = $i;
            }
        }
        foreach ($seen as $d => $where) {
            if (count($where) > 1) {
                $problems[] = "$name has " . count($where) . " × $d";
                array_push($conflicts, ...$where);
            }
        }
    }
    if ($empty > 0) {
        array_unshift($problems, $empty === 1 ? '1 cell is empty' : "$empty cells are empty");
    }
    if ($changed !== []) {
        $problems[] = count($changed) . ' given cell(s) changed';
    }
    $conflicts = array_values(array_unique($conflicts));
    return [
        'solved' => $empty === 0 && $changed === [] && $conflicts === [],
        'empty' => $empty,
        'changed' => $changed,
        'conflicts' => $conflicts,
        'problems' => $problems,
    ];
}

/** A grid as 81 characters, 0 for an empty cell. */
function toString(array $grid): string
{
    return implode('', $grid);
}

/** A grid from a string of 81 digits (`0` or `.` for an empty cell; blanks, `,` and `|` ignored), or null. */
function fromString(string $s): ?array
{
    $s = preg_replace('/[\s,|]+/', '', $s) ?? '';
    if (!preg_match('/^[0-9.]{81}$/', $s)) {
        return null;
    }
    return array_map(fn ($ch) => $ch === '.' ? 0 : (int) $ch, str_split($s));
}
