"""`sluice lint`: prove the repository is deliverable before anything is delivered."""
