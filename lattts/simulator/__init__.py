"""The analytical half of lattts: pure numpy, never torch.

- ``roofline``: cost of one forward pass per op group on a device profile;
- ``profile``: device profiles (datasheet x efficiencies, or calibrated);
- ``generation``: end-to-end latency of B branches, plain or speculative, in closed form;
- ``speculative``: tokens per round and the slowest-branch round count;
- ``accuracy``: accuracy(B, L) curves with provenance; ``lengths``: natural output lengths;
- ``search``: the (B, gamma, L) grid, Pareto frontier and best configuration within a budget.
"""
