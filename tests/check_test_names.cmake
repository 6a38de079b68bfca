# ctest registers one test per doctest case and cuts names at ';', after
# which the filter matches no case and the "test" passes having run nothing.
# This check fails the suite if any TEST_CASE name contains a ';'.
file(GLOB sources ${SOURCE_DIR}/tests/*.cpp)
foreach(f ${sources})
  file(STRINGS ${f} lines REGEX "TEST_CASE\\(\"[^\"]*;")
  if(lines)
    message(FATAL_ERROR "${f}: a TEST_CASE name contains ';' (ctest would run nothing for it): ${lines}")
  endif()
endforeach()
