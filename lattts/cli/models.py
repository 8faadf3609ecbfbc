"""`lattts models`: the models lattts knows by name, with exact counts beside the published ones."""

from __future__ import annotations

import typer

from lattts.cli.common import console, handle_errors, print_json


def register(app: typer.Typer) -> None:
    app.command("models")(models)


@handle_errors
def models(json_out: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table.")) -> None:
    """List named models: shape, exact parameter count, published count and its source, draft pairs."""
    from lattts.models.registry import catalog, draft_pairs, resolve_model

    rows = []
    for entry in catalog():
        spec = resolve_model(entry.name)
        rows.append({
            "name": entry.name, "hf_id": entry.hf_id, "aliases": list(entry.aliases), "config": entry.config,
            "arch": spec.arch, "layers": spec.n_layers, "hidden": spec.d_model, "heads": spec.n_heads,
            "kv_heads": spec.n_kv_heads, "vocab": spec.vocab_size, "params": spec.n_params,
            "published_params": entry.published_params, "params_source": entry.params_source,
            "kv_bytes_per_token_bf16": spec.kv_bytes_per_token("bf16"),
        })
    pairs = [{"target": p.target, "draft": p.draft, "acceptance_rate": p.acceptance_rate, "source": p.source}
             for p in draft_pairs()]
    if json_out:
        print_json({"models": rows, "draft_pairs": pairs})
        return
    from rich.table import Table

    t = Table(title="models (shape from each config.json; params counted exactly)", title_justify="left")
    for col in ("name", "shape", "params", "published", "KV/token (bf16)", "aliases"):
        t.add_column(col, overflow="fold")
    for r in rows:
        pub = f"{r['published_params'] / 1e9:.3g}B" if r["published_params"] else "-"
        t.add_row(r["name"], f"{r['arch']} {r['layers']}L d{r['hidden']} {r['heads']}/{r['kv_heads']}h",
                  f"{r['params'] / 1e9:.4g}B", pub, f"{r['kv_bytes_per_token_bf16'] / 1024:.0f} KiB",
                  ", ".join(r["aliases"]))
    console.print(t)
    for r in rows:
        if r["published_params"]:
            console.print(f"  published count of {r['name']}: {r['params_source']}", highlight=False)
    p = Table(title="draft pairs with a measured acceptance rate (paper, Appendix A.2)", title_justify="left")
    for col in ("target", "draft", "alpha", "source"):
        p.add_column(col, overflow="fold")
    for r in pairs:
        p.add_row(r["target"], r["draft"], f"{r['acceptance_rate']:.3f}", r["source"])
    console.print(p)
