"""SQL: tables, the unit of work and the migrations. The only package that speaks SQL."""
