#!/usr/bin/env python3
# tests/ui/term/qrpane.py: draw the QR block of a captured terminal pane as the terminal shows it
# (light text on a dark background, cells twice as tall as wide) into a PNG for zbarimg.
# Usage: qrpane.py CAPTURE.txt OUT.png   (exit 1 if the capture has no QR block)
import sys

from PIL import Image

CELL_W, CELL_H = 8, 16  # a terminal cell; a UTF-8 half block is then one 8x8 module
LIGHT, DARK = 255, 0
MARGIN = 4  # cells of terminal background around the block

# Each character: (top half light?, bottom half light?). Text is drawn light on a dark background.
UTF8 = {"\u2588": (True, True), "\u2580": (True, False), "\u2584": (False, True), " ": (False, False)}
ASCII = {"#": (True, True), " ": (False, False)}


def block(lines, alphabet):
    """The longest run of lines made only of the alphabet with some ink on each."""
    best, run = [], []
    for line in lines + [""]:
        if len(line.replace(" ", "")) >= 10 and all(c in alphabet for c in line):
            run.append(line)
            continue
        if len(run) > len(best):
            best = run
        run = []
    return best


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        lines = f.read().split("\n")
    rows = block(lines, UTF8)
    alphabet = UTF8
    if len(rows) < 10:
        rows, alphabet = block(lines, ASCII), ASCII
    if len(rows) < 10:
        print("qrpane: no QR block in " + sys.argv[1], file=sys.stderr)
        return 1
    cols = max(len(r) for r in rows)
    img = Image.new("L", ((cols + 2 * MARGIN) * CELL_W, (len(rows) + 2 * MARGIN) * CELL_H), DARK)
    half = CELL_H // 2
    for y, row in enumerate(rows):
        for x, ch in enumerate(row.ljust(cols)):
            top, bottom = alphabet[ch]
            px, py = (x + MARGIN) * CELL_W, (y + MARGIN) * CELL_H
            if top:
                img.paste(LIGHT, (px, py, px + CELL_W, py + half))
            if bottom:
                img.paste(LIGHT, (px, py + half, px + CELL_W, py + CELL_H))
    img.save(sys.argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main())
