"""Tables, figures and renderings for the report."""
