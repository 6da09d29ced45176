"""Streamlit glue shared by the pages (no engine logic, no SQL)."""
