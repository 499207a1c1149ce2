"""What reads a Report and writes files: pictures, the HTML report, Model Explorer, the browser."""
