"""What each page shows, as pure functions (no Streamlit): one module per page, shared
pieces in common.py and figures.py."""
