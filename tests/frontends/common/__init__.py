"""frontends/common/: what every front-end shares."""
