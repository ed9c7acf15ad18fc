"""The bare reference: the same work as the platform's routes with Litestar and the database driver alone."""
