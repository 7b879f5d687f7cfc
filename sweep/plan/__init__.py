"""What a sweep will run: the grid's runs, their recipe, identity, resources, cost and WSD branches."""
