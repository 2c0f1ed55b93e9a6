# Writes the commented example configuration of one program (cmake -P):
# every option from PROGRAM --print-defaults, the option table the program
# itself reads, commented out at its default, so that the example cannot
# drift from the program and an installation follows changed defaults.
#   cmake -DPROGRAM=path -DNAME=wardd -DCONF=/etc/ward/wardd.ini -DOUT=file -P this
execute_process(COMMAND ${PROGRAM} --print-defaults OUTPUT_VARIABLE text
  RESULT_VARIABLE status)
if(NOT status EQUAL 0)
  message(FATAL_ERROR "${PROGRAM} --print-defaults failed (${status})")
endif()
# Its first line is the heading "# NAME configuration: every option ...".
# (REGEX REPLACE would apply "^" again after each match.)
string(FIND "${text}" "\n" eol)
math(EXPR eol "${eol} + 1")
string(SUBSTRING "${text}" ${eol} -1 text)
string(REGEX REPLACE "\n([a-z_]+ =)" "\n#\\1" text "${text}")
file(WRITE ${OUT} "# The configuration of ${NAME}: ${CONF}
# Every option is shown commented out, at its default, with its meaning
# above it; uncomment a line to change it. `${NAME} --print-defaults`
# prints the same list for the installed version. An unknown section or
# key, or a malformed value, stops ${NAME} with a message naming the line.
${text}")
