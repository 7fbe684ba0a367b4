"""Problems beyond single targets: classes F of candidate targets."""
