"""Training, degradation and evaluation code for the project's own compact models (`retouch train|eval`)."""
