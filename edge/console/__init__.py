"""The operators' console: a web app where authorised people trace a case, see each checkpoint's history and
coverage, and publish exposure notices; every trace, export, notice, login and user change is audited."""
