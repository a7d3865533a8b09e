# Turns the HTML report's page sources (page.css, page.js) into a C header:
# one array of string literals per file, one literal per line, so that no
# literal passes C11's 4095-character limit. Backslashes, double quotes and
# question marks (trigraphs) are escaped. Used by the Makefile.
FNR == 1 {
	if (NR > 1)
		print "};"
	name = FILENAME
	sub(/.*\//, "", name)
	gsub(/[^A-Za-z0-9]/, "_", name)
	print "static const char *const report_" name "[] = {"
}
{
	gsub(/\\/, "&&")
	gsub(/"/, "\\\"")
	gsub(/\?/, "\\?")
	print "\t\"" $0 "\\n\","
}
END {
	print "};"
}
