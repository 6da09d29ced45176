"""Placeholder until this page is built on engine.analysis."""
import streamlit as st

st.title("size_vs_compute")
st.info("This page is being built; use **Explore** meanwhile.")
