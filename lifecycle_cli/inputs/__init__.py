"""Reading the exports: customers (eagerly, checked row by row), usage (lazily), lookup and
attribute tables.

- `formats`: which suffix is read how (CSV, Parquet, Excel); `options`: a table's sheet,
  header row and encoding; `excel`: sheets and title rows of workbooks;
- `csvtext`: CSV text as it comes (encodings, ragged rows, line numbers);
- `types`: a type per text column when every value agrees;
- `mapping`: the rules' ``columns:`` applied to a header;
- `customers`, `usage`: the two exports; `lookups`: tables that give a usage row's key
  its customer; `attributes`: per-customer tables joined into the customers.
"""
