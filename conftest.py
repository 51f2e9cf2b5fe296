"""This repository's own runbooks run under plain pytest too: the runbooks plugin (a pytest11 entry
point) collects features/**/*.feature and loads the step library itself."""
