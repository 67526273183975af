"""Renderers that write files: tables as CSV, Parquet and XLSX (`tables`), the HTML
dashboard (`html`, `svg`), and the cell formats they share (`cells`)."""
