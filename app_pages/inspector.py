"""Placeholder until this page is built on engine.analysis."""
import streamlit as st

st.title("inspector")
st.info("This page is being built; use **Explore** meanwhile.")
