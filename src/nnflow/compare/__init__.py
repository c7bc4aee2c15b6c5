"""Result sets of finished reproductions: list their runs, keep snapshots, compare two."""
