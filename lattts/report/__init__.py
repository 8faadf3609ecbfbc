"""Tables (rich) and interactive figures (plotly) shared by the CLI and the notebooks."""
