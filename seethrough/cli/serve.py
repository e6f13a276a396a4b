"""``seethrough serve RUN...``: the web page, on 127.0.0.1 unless told otherwise."""

from __future__ import annotations

import click

from .app import cli, console, examples


@cli.command(epilog=examples(
    "seethrough serve runs/digits-logreg runs/digits-smallcnn",
    "seethrough serve runs/my-run --port 8080 --max-memory-mb 512"))
@click.argument("runs", nargs=-1, required=True, type=click.Path())
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on. Anything but 127.0.0.1 lets other machines use the page.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--data-dir", type=click.Path(), help="Folder holding data sets (for the test images).")
@click.option("--max-upload-mb", default=10.0, show_default=True, type=click.FloatRange(0.01),
              help="Largest image file accepted, in megabytes.")
@click.option("--max-pixels", default=16_000_000, show_default=True, type=click.IntRange(1),
              help="Largest image accepted, in width x height.")
@click.option("--max-memory-mb", default=256.0, show_default=True, type=click.FloatRange(1),
              help="Memory that decoding uploads may take at once, in MiB; more images wait their turn.")
@click.option("--allow-host", multiple=True, metavar="NAME",
              help="Another name or address the page may be opened as (besides --host and localhost); repeatable.")
def serve(runs, host, port, data_dir, max_upload_mb, max_pixels, max_memory_mb, allow_host):
    """Serve a web page where an image flows through the models in RUNS (run folders)."""
    from ..errors import SeethroughError

    try:
        import uvicorn

        from ..web import create_app
        from ..web.budget import map_large_blocks
    except ImportError as exc:
        raise SeethroughError(f"seethrough serve needs the web extra ({exc.name} is missing): "
                              "pip install 'seethrough[web]'") from None

    hosts = [host, *allow_host, *(_machine_names() if host in ("0.0.0.0", "::") else [])]
    app = create_app(runs, data_dir=data_dir, max_bytes=int(max_upload_mb * 1024 * 1024), max_pixels=max_pixels,
                     max_memory=int(max_memory_mb * 2**20), hosts=hosts)
    for run in app.state.store.runs.values():
        console.print(f"model [bold]{run.id}[/bold]: {run.folder}", highlight=False)
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"[yellow]warning:[/yellow] listening on {host}: other machines can reach this page")
    console.print(f"open http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{port}/  "
                  f"(API documentation at /docs; Ctrl+C stops)", highlight=False)
    map_large_blocks()
    uvicorn.run(app, host=host, port=port, log_level="warning")


def _machine_names() -> list[str]:
    """This machine's name and addresses: what other machines may call it when serving on all interfaces."""
    import socket

    name = socket.gethostname()
    try:
        addresses = socket.gethostbyname_ex(name)[2]
    except OSError:
        addresses = []
    return [name, socket.getfqdn(), *addresses]
