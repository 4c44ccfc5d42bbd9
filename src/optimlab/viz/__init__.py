"""Plots: optimizer paths on test surfaces, loss landscapes, the worked examples, the report."""
