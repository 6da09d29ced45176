"""Placeholder until this page is built on engine.analysis."""
from ui import common

common.require_router()  # a deep link to a fresh server runs this file without app.py
import streamlit as st

st.title("Planner")
st.info("This page is being built; use **Explore** meanwhile.")
