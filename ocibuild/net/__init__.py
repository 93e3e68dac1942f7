"""HTTP for everything ocibuild fetches or sends: one session factory (`session`), one retry
policy (`retry`), one deadline policy (`deadline`, `policy`), the rules of where a server may send
ocibuild (`links`), bounded body readers (`body`), and failures that name their cause
(`failure`). Import the module that holds a name: this package imports none of them, so that a
build from files on disk never loads requests (a tenth of a second)."""
