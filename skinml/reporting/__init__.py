"""Self-contained HTML reports (images and plots embedded) and plot helpers."""

from skinml.reporting.html import HtmlReport, figure_to_data_uri, image_to_data_uri

__all__ = ["HtmlReport", "figure_to_data_uri", "image_to_data_uri"]
