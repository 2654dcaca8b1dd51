"""The council's audit rules: the framework, the calendar and the steps of an audit."""
