"""The Board's report and single audits, rendered as HTML, XLSX, CSV, JSON and PDF."""
