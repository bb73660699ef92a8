package emf

// Units exposes CloudWatch's unit list to the external tests.
var Units = units
