"""Report stage: render analyses to Markdown, HTML, CSV, figures and the sample browser."""
