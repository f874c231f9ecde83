"""Figures for supervisors and analysts, worked out from the evidence store."""
