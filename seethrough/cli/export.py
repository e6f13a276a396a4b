"""The export command: a run folder to a portable model file."""

from __future__ import annotations

import click

from .app import cli, console, examples


@cli.command(epilog=examples(
    "seethrough export runs/digits-smallcnn",
    "seethrough export runs/cifar10-fastcifar --format onnx --out fastcifar.onnx"))
@click.argument("run", type=click.Path())
@click.option("--format", "fmt", default="onnx", show_default=True, help="onnx.")
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="File to write (default: RUN/model.onnx).")
def export(run, fmt, out):
    """Export RUN's model (preprocessing included: uint8 NxHxWxC in, logits out)."""
    from ..export import export_run

    path = export_run(run, fmt, out)
    console.print(f"wrote {path} ({path.stat().st_size:,} bytes): input 'images' uint8 (N, H, W, C), "
                  "output 'logits'")
