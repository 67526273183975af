"""Reading the exports: customers (eagerly, checked row by row) and usage (lazily).

- `formats`: which suffix is read how (CSV, Parquet, Excel);
- `csvtext`: CSV text as it comes (encodings, ragged rows, line numbers);
- `types`: a type per text column when every value agrees;
- `mapping`: the rules' ``columns:`` applied to a header;
- `customers`, `usage`: the two exports.
"""
