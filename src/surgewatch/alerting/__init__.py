"""Alerting: rules turn findings into alert events; the dispatcher delivers them to sinks."""
