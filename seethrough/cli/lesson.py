"""``seethrough lesson [NAME]``: the arithmetic of image recognition, computed and shown."""

from __future__ import annotations

import click
from rich.table import Table

from .app import cli, console, examples


@cli.command(epilog=examples(
    'seethrough lesson',
    'seethrough lesson convolution --kernel "1,0,-1;1,0,-1;1,0,-1" --stride 2 --padding 1',
    'seethrough lesson logistic-regression --data catvnoncat --data-dir ../shared/datasets --out lr-cat'))
@click.argument("name", required=False)
@click.option("--image", type=click.Path(), help="Your own input: a small CSV of numbers or an image file (shrunk to 8x8).")
@click.option("--kernel", help="Your own filter: '1,0,-1;1,0,-1;1,0,-1' (rows split by ';') or a CSV file.")
@click.option("--stride", type=int, help="Step of the filter or pool.")
@click.option("--padding", type=int, help="Zeros added on every side.")
@click.option("--size", type=int, help="pooling: the pool's size (default 2).")
@click.option("--model", help="receptive-field: a registered model or a JSON spec file (default seed-cnn).")
@click.option("--input", "input_shape", help="receptive-field: input HxWxC (default 32x32x3).")
@click.option("--data", help="logistic-regression: 'catvnoncat' runs the classic exercise.")
@click.option("--data-dir", type=click.Path(), help="Folder holding downloaded data sets.")
@click.option("--iterations", type=int, help="logistic-regression --data: gradient steps (default 2000).")
@click.option("--lr", type=float, help="logistic-regression and backprop: learning rate.")
@click.option("--out", type=click.Path(file_okay=False),
              help="logistic-regression --data: folder for cost.png and the run folder.")
@click.option("--html", "html_file", type=click.Path(dir_okay=False), help="Also write the lesson as an HTML page.")
def lesson(name, image, kernel, stride, padding, size, model, input_shape, data, data_dir, iterations, lr, out,
           html_file):
    """Worked examples computed by the NumPy engine; no NAME lists them."""
    from .. import _io
    from ..lessons import LESSONS, run_lesson
    from ..lessons.render import lesson_html, print_lesson

    if name is None:
        table = Table(title="lessons: seethrough lesson NAME [--html FILE]")
        table.add_column("name")
        table.add_column("what it shows")
        for key, (_, summary) in LESSONS.items():
            table.add_row(key, summary)
        console.print(table)
        return
    result = run_lesson(name, image=image, kernel=kernel, stride=stride, padding=padding, size=size, model=model,
                        input=input_shape, data=data, data_dir=data_dir, iterations=iterations, lr=lr, out=out,
                        log=lambda text: console.print(text, highlight=False, soft_wrap=True))
    print_lesson(result, console)
    if html_file:
        _io.write_text(html_file, lesson_html(result))
        console.print(f"HTML: {html_file}")
