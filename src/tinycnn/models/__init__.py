"""The models: the blocks and layout grammar, Model_1..Model_8 and their registry, a model of your
own (FILE.py:NAME), the spec that names any of them, and the tables (parameters, MACs, receptive field)."""
